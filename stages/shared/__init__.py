"""Code the stage scripts share, one module per concern."""

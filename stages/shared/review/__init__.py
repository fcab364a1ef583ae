"""Review: what a person reads: the summary and its tables, figures, DVC plot data."""

"""Core: what every stage needs and that knows nothing of images or models: the params loader
and the `base` section (config), the project's paths, command-line plumbing and user errors
(cli), seeding, and the name of the machine a speed was measured on (machine)."""

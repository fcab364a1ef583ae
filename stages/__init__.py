"""Pipeline stages: one standalone script per DVC stage (`python -m stages.<name>`)."""

import os

# Set before any third-party import: no update checks over the network, quiet TF start-up.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

"""Pipeline stages: one standalone script per DVC stage (`python -m stages.<name>`)."""

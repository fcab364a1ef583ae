"""The params schema, one module per `params.yaml` section (`core.config` holds `base` and the
loader). A section lists its choices from the module that implements them (optimizers from
training.optim, backbones from models.backbones, ...), so a choice is defined once, and a
stage depends on its own section's module only.
"""

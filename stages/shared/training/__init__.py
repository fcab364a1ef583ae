"""Training: the course of a training stage (loop), its data feed (inputs), optimizers and
schedules (optim), callbacks, resumable state, first-batch and sanity checks, distribution."""

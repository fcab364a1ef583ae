"""Evaluation: test metrics of both tasks, constant-answer baselines, behaviour checks on
transformed images, slices, and bootstrap intervals."""

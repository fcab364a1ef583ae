"""Benchmarks (not tests): run with `make bench`; each prints measured ratios and targets."""

"""Confidence intervals of test metrics: a seeded bootstrap over the test images.

Each resample draws as many test images as there are, with replacement, and recomputes the
metric; the interval is the 2.5th and 97.5th percentile of the resampled values (Efron's
percentile bootstrap). It answers "how much would this number move on another test set of
the same size from the same collection", the question a reviewer asks of a small test split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stages.shared.core.seeding import make_rng

LEVEL = 0.95


def bootstrap(
    count: int,
    statistics: Callable[[np.ndarray], dict[str, float]],
    resamples: int,
    seed: int,
) -> dict[str, dict[str, float | None]]:
    """{metric: {"low", "high"}} from `resamples` draws of `count` row indices; a metric
    undefined on a resample (NaN) is left out of that resample's values."""
    rng = make_rng(seed, "bootstrap")
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for name, value in statistics(rng.integers(0, count, count)).items():
            draws.setdefault(name, []).append(value)
    tail = (1 - LEVEL) / 2 * 100
    intervals = {}
    for name, values in draws.items():
        defined = np.asarray(values, dtype=np.float64)
        defined = defined[~np.isnan(defined)]
        if not len(defined):
            intervals[name] = {"low": None, "high": None}
            continue
        low, high = np.percentile(defined, [tail, 100 - tail])
        intervals[name] = {"low": round(float(low), 4), "high": round(float(high), 4)}
    return intervals


def describe(value: float | None, interval: dict | None) -> str:
    """'0.992 (95% CI 0.981–0.999)', or the value alone without an interval."""
    if value is None:
        return "none"
    if not interval or interval.get("low") is None:
        return f"{value:.4g}"
    return f"{value:.4g} (95% CI {interval['low']:.4g}–{interval['high']:.4g})"

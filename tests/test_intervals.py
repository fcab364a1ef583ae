"""intervals.py: the percentile bootstrap, checked against its definition."""

from __future__ import annotations

import numpy as np

from stages.shared.evaluation.intervals import bootstrap, describe


def test_the_interval_is_the_2_5th_and_97_5th_percentile_of_the_resampled_values():
    values = np.random.default_rng(3).normal(0.5, 0.2, 40)
    seen = []

    def statistics(rows):
        seen.append(float(values[rows].mean()))
        return {"mean": seen[-1]}

    interval = bootstrap(len(values), statistics, resamples=400, seed=1)["mean"]
    assert len(seen) == 400
    assert interval == {
        "low": round(float(np.percentile(seen, 2.5)), 4),
        "high": round(float(np.percentile(seen, 97.5)), 4),
    }
    # 2.5% of the resampled values on each side, by count.
    assert sum(v < interval["low"] for v in seen) in (10, 11)
    assert sum(v > interval["high"] for v in seen) in (9, 10)


def test_the_draws_are_pinned_to_the_seed():
    # Committed intervals hang on these draws: the first resample of 5 rows under seed 0.
    first = []

    def statistics(rows):
        first.append(rows.tolist()) if not first else None
        return {"m": float(rows.mean())}

    assert bootstrap(5, statistics, resamples=50, seed=0) == bootstrap(
        5, lambda rows: {"m": float(rows.mean())}, resamples=50, seed=0
    )
    assert first == [[2, 4, 3, 4, 3]]


def test_undefined_resamples_are_left_out_and_an_always_undefined_metric_has_no_interval():
    def statistics(rows):
        share = float(np.mean(rows < 5))
        return {
            "never": float("nan"),  # first: the metrics after it still get their interval
            "some": share if share > 0.3 else None,
            "always": share,
        }

    intervals = bootstrap(10, statistics, resamples=300, seed=2)
    assert intervals["never"] == {"low": None, "high": None}
    assert intervals["some"]["low"] > 0.3  # the undefined draws did not count as values
    assert intervals["always"]["low"] < intervals["some"]["low"]
    assert describe(0.5, intervals["never"]) == "0.5"
    assert describe(0.5, intervals["always"]).startswith("0.5 (95% CI ")

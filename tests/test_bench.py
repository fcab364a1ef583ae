"""bench/: the machine line every measurement is recorded with; the recipe check's verdict."""

from __future__ import annotations

import pytest

from bench.__main__ import vector_isa
from bench.recipe_check import holds, over_seeds, table


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"fpu", "avx", "avx2", "fma", "avx512f", "avx512bw"}, "AVX-512"),
        ({"fpu", "avx", "avx2", "fma"}, "AVX2"),
        ({"fpu", "sse4_2", "avx"}, "AVX"),
        ({"fpu", "sse4_2"}, "no AVX"),
        # avx512f, the foundation every AVX-512 CPU lists, is the flag that names AVX-512
        ({"avx2", "avx512vl"}, "AVX2"),
    ],
)
def test_the_widest_vector_isa_is_named_from_the_cpu_flags(flags, expected):
    assert vector_isa(flags) == expected


def detection(base: dict, runs: list[dict] | None = None) -> dict:
    found = {
        "dataset": "coins",
        "task": "detection",
        "images": 360,
        "skipped": 0,
        "test_images": 56,
        "seconds": 60.0,
        **base,
        "ci95": {},
    }
    if runs:
        timed = [{**run, "seconds": 60.0} for run in runs]
        found["seeds"] = {"runs": timed, **over_seeds(runs, ["ap50", "mean_iou"])}
    return found


def test_a_detection_target_holds_by_the_mean_over_the_seeds_not_the_base_seed():
    lucky = [
        {"ap50": 0.95, "mean_iou": 0.80},
        {"ap50": 0.84, "mean_iou": 0.75},
        {"ap50": 0.85, "mean_iou": 0.74},
    ]  # AP50 mean 0.88
    assert holds(detection(lucky[0])) is True
    assert holds(detection(lucky[0], lucky)) is False
    unlucky = [
        {"ap50": 0.89, "mean_iou": 0.73},
        {"ap50": 0.93, "mean_iou": 0.75},
        {"ap50": 0.91, "mean_iou": 0.71},
    ]  # means 0.91 and 0.73
    assert holds(detection(unlucky[0])) is False
    assert holds(detection(unlucky[0], unlucky)) is True
    seeds = over_seeds(unlucky, ["ap50", "mean_iou"])
    assert seeds["ap50"] == {"mean": 0.91, "low": 0.89, "high": 0.93}
    row = table([{**detection(unlucky[0], unlucky), "holds": True}]).splitlines()[-1]
    assert "ap50 0.910 (0.890–0.930), mean_iou 0.730 (0.710–0.750) over 3" in row
    assert row.endswith("| yes | 1.0 min (3.0 for all seeds) |")

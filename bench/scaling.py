"""Scaling with data: split + augment + one training epoch of the detector on the sample and on
a 4× larger generated dataset; wall time and peak memory (RSS) ratios.

Training streams its images (`cache: none`) here: with the default `cache: auto` the decoded
images are kept in RAM up to a 2 GiB budget, which trades memory for speed on purpose and makes
memory grow with the data until that budget is reached.
"""

from __future__ import annotations

import copy

from bench.common import project_params, row, run_measured, stage_command, temp_project
from stages import sample

SCALE = 4


def measure(params: dict) -> tuple[float, float]:
    """(seconds, peak MiB) of split + augment + 1 epoch of train-detector, each a process."""
    with temp_project(params, [(sample.main, ["detection"])]) as root:
        seconds, peak = 0.0, 0.0
        for module, args in (
            ("split", ["detection"]),
            ("augment", ["detection"]),
            ("train_detector", []),
        ):
            spent, rss = run_measured(stage_command(module, *args), cwd=root)
            seconds, peak = seconds + spent, max(peak, rss)
    return seconds, peak


def run() -> list[dict]:
    params = project_params()
    params["train_detector"].update(epochs=1, cache="none")
    small = measure(params)
    big_params = copy.deepcopy(params)
    big_params["sample"]["detection"]["frames"] *= SCALE
    big = measure(big_params)
    time_ratio, rss_ratio = big[0] / small[0], big[1] / small[1]
    frames = params["sample"]["detection"]["frames"]
    print(
        f"scaling: {frames} frames {small[0]:.1f}s {small[1]:.0f} MiB; {frames * SCALE} frames"
        f" {big[0]:.1f}s {big[1]:.0f} MiB; ratios {time_ratio:.2f}, {rss_ratio:.2f}"
    )
    return [
        row(
            f"split+augment+1 epoch, {SCALE}× data / 1× (time)",
            round(time_ratio, 2),
            "<= 4.4",
            time_ratio <= 4.4,
        ),
        row(
            f"split+augment+1 epoch, {SCALE}× data / 1× (peak RSS)",
            round(rss_ratio, 2),
            "<= 1.3",
            rss_ratio <= 1.3,
        ),
        row("split+augment+1 epoch, 1× data, seconds", round(small[0], 1)),
        row("split+augment+1 epoch, 1× data, peak RSS MiB", round(small[1])),
    ]

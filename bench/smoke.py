"""`make bench-smoke`: every benchmark and recipe entry point once, at toy size, so none of them
rots between the runs that measure (CI runs this; a stale import fails here, not an hour into
`make bench`).

Each runs with BENCH_SMOKE=1 (bench.common.toy: tiny params, one or two of everything) in a
copy of the working tree, so the result files it writes land in the copy and the committed
ones stay as measured. Its figures mean nothing and no verdict fails it: only a crash does.

    python -m bench.smoke            # all of them
    python -m bench.smoke mfu levers # some, by name
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

# name: (command after `python`, extra environment). The make target each stands for is in
# tests/test_make_targets.py.
ENTRY_POINTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "bench": (["-m", "bench"], {}),
    "noise-floor": (["-m", "bench.noise_floor"], {}),
    "recipe-check": (["-m", "bench.recipe_check"], {"ONLY": "textures,coins", "SEEDS": "2"}),
    "recipe-levers": (
        ["-m", "bench.recipe_levers", "--only", "copy-paste", "--seeds", "1"],
        {},
    ),
    "mutation": (
        ["-m", "bench.mutation", "--sample", "2", "stages/shared/core/lockfile.py"],
        {},
    ),
    "scale near copies": (["-m", "bench.scale", "near-copies"], {"SCALE": "2"}),
}


def tree_copy(target: Path) -> Path:
    """The working tree's files (tracked, and new ones not ignored) copied to `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(names: list[str]) -> list[tuple[str, float]]:
    """Run the named entry points in one copy of the tree: (name, seconds) of each; the first
    that fails ends the run with its name and the tail of its output."""
    unknown = sorted(set(names) - set(ENTRY_POINTS))
    if unknown:
        raise SystemExit(f"bench.smoke: unknown {', '.join(unknown)}; choices: "
                         f"{', '.join(ENTRY_POINTS)}")  # fmt: skip
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = tree_copy(Path(tmp) / "tree")
        for name in names:
            args, extra = ENTRY_POINTS[name]
            env = {**os.environ, "BENCH_SMOKE": "1", "PYTHONPATH": str(copy),
                   "TQDM_DISABLE": "1", **extra}  # fmt: skip
            started = time.perf_counter()
            with tempfile.TemporaryFile("w+") as out:
                code = subprocess.run(
                    [sys.executable, *args], cwd=copy, env=env, stdout=out, stderr=out
                ).returncode
                out.seek(0)
                said = out.read()
            seconds = time.perf_counter() - started
            if code != 0:
                raise SystemExit(f"bench smoke: {name} failed (exit {code}):\n{said[-4000:]}")
            print(f"{name}: ran in {seconds:.0f} s", flush=True)
            timings.append((name, seconds))
    return timings


def main(argv: list[str] | None = None) -> None:
    names = list(sys.argv[1:] if argv is None else argv) or list(ENTRY_POINTS)
    run(names)


if __name__ == "__main__":
    main()

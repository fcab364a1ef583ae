"""`make bench-smoke`: every benchmark and recipe entry point once, at toy size, so none of them
rots between the runs that measure (CI runs this; a stale import fails here, not an hour into
`make bench`).

Each runs with BENCH_SMOKE=1 (bench.common.toy: tiny params, one or two of everything) in its
own copy of the working tree, so the result files it writes land in the copy and the committed
ones stay as measured. Its figures mean nothing and no verdict fails it: only a crash does.
Most of an entry point's time is one process at a time (interpreters starting, TensorFlow
loading), so two run at once, one a core, the longest first.

    python -m bench.smoke                  # all of them
    python -m bench.smoke "bench mfu" noise-floor
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.__main__ import BENCHMARKS
from bench.common import ROOT

# name: (command after `python`, extra environment), about the longest first. The make target
# each stands for is found by tests/test_make_targets.py from the module it runs.
ENTRY_POINTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "noise-floor": (["-m", "bench.noise_floor"], {}),
    "recipe-check": (["-m", "bench.recipe_check"], {"ONLY": "textures,coins", "SEEDS": "2"}),
    **{f"bench {name}": (["-m", "bench", name], {}) for name in BENCHMARKS},
    "recipe-levers": (
        ["-m", "bench.recipe_levers", "--only", "copy-paste", "--seeds", "1"],
        {},
    ),
    "mutation": (
        ["-m", "bench.mutation", "--sample", "2", "stages/shared/core/lockfile.py"],
        {},
    ),
}
LANES = 2


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


def run_one(name: str, work: Path) -> tuple[str, float, int, str]:
    """One entry point in its own copy of the tree: (name, seconds, exit code, output)."""
    args, extra = ENTRY_POINTS[name]
    copy = tree_copy(work / name.replace(" ", "-"))
    env = {**os.environ, "BENCH_SMOKE": "1", "PYTHONPATH": str(copy), "TQDM_DISABLE": "1",
           **extra}  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        code = subprocess.run(
            [sys.executable, *args], cwd=copy, env=env, stdout=out, stderr=out
        ).returncode
        out.seek(0)
        said = out.read()
    seconds = time.perf_counter() - started
    print(f"{name}: {'ran' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s",
          flush=True)  # fmt: skip
    return name, seconds, code, said


def run(names: list[str], lanes: int = LANES) -> list[tuple[str, float]]:
    """Run the named entry points, `lanes` at a time: (name, seconds) of each. Any that fail
    end the run with their names and the tail of their output."""
    unknown = sorted(set(names) - set(ENTRY_POINTS))
    if unknown:
        raise SystemExit(f"bench.smoke: unknown {', '.join(unknown)}; choices: "
                         f"{', '.join(ENTRY_POINTS)}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(lanes) as pool:
        done = list(pool.map(lambda name: run_one(name, Path(tmp)), names))
    failed = [(name, code, said) for name, _, code, said in done if code != 0]
    if failed:
        lines = [f"bench smoke: {name} failed (exit {code}):\n{said[-3000:]}"
                 for name, code, said in failed]  # fmt: skip
        raise SystemExit("\n".join(lines))
    return [(name, seconds) for name, seconds, _, _ in done]


def main(argv: list[str] | None = None) -> None:
    names = list(sys.argv[1:] if argv is None else argv) or list(ENTRY_POINTS)
    started = time.perf_counter()
    run(names)
    print(f"bench smoke: {len(names)} entry points in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""What DVC itself costs: a no-op `dvc repro`, and a plot-only change vs the whole pipeline.

Runs in a throw-away git + DVC copy of the project with the end-to-end tests' tiny params, so
the whole pipeline takes about a minute instead of several.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import edit_params, row, timed, toy
from bench.project import dvc, new_pipeline_repo, run_cli


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        project = new_pipeline_repo(Path(tmp) / "project")
        full = timed(lambda: dvc("repro", cwd=project))
        noop = min(timed(lambda: dvc("repro", cwd=project)) for _ in range(toy(3, 1)))
        import_dvc = [sys.executable, "-c", "import dvc"]
        bare = min(timed(lambda: run_cli(import_dvc, project)) for _ in range(toy(3, 1)))
        edit_params(project, lambda params: params["plot"].update(dpi=params["plot"]["dpi"] + 1))
        plot_only = timed(lambda: dvc("repro", cwd=project))
    print(f"dvc: full {full:.1f}s, no-op {noop:.2f}s (import dvc {bare:.2f}s)")
    print(f"dvc: plot-only change {plot_only:.1f}s")
    return [
        row("no-op dvc repro, seconds", round(noop, 2), "<= 2", noop <= 2.0),
        row("no-op dvc repro / python -c 'import dvc'", round(noop / bare, 2)),
        row("plot-only change / whole pipeline (tiny params)", round(plot_only / full, 2)),
    ]

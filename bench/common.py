"""Helpers the benchmarks share: a throw-away project directory and result rows."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def project_params() -> dict:
    """The project's params.yaml as a dict."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@contextlib.contextmanager
def temp_project(params: dict, stages: list[tuple[Callable, list[str]]]) -> Iterator[Path]:
    """Run stage mains in a temporary directory with `params`; yield it as the cwd."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            Path("params.yaml").write_text(yaml.safe_dump(params))
            for main, argv in stages:
                main(argv)
            yield Path(tmp)
        finally:
            os.chdir(cwd)


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def row(figure: str, value: float, target: str = "-", holds: bool | None = None) -> dict:
    """One line of the results table."""
    verdict = "-" if holds is None else ("yes" if holds else "no")
    return {"figure": figure, "value": value, "target": target, "holds": verdict}

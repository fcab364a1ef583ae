"""The README's commands, timed as a newcomer runs them: a fresh clone of the last commit, the
install (`make .venv/.dev`: requirements.lock and requirements-dev.lock from the package index),
then `make run` (the whole default pipeline), `make test` and `make test-docs`, one after the
other, nothing else of this project running. `python -m bench.quickstart` writes
bench/QUICKSTART.md and bench/quickstart.json; the README quotes them (a test holds the two to
agree). Not part of `make bench`: it takes most of an hour here.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine

RESULTS = ROOT / "bench/quickstart.json"
REPORT = ROOT / "bench/QUICKSTART.md"
STEPS = [
    ("install", ["make", ".venv/.dev"]),
    ("make run", ["make", "run"]),
    ("make test", ["make", "test"]),
    ("make test-docs", ["make", "test-docs"]),
]


def minutes_seconds(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def tests_passed(output: str) -> int | None:
    """How many tests pytest's last summary line says passed."""
    found = re.findall(r"(\d+) passed", output)
    return int(found[-1]) if found else None


def main() -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for name, command in STEPS:
            started = time.perf_counter()
            done = subprocess.run(command, cwd=clone, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
            steps[name] = {"seconds": round(seconds, 1), "tests": tests_passed(done.stdout)}
            print(f"{name}: {minutes_seconds(seconds)}", flush=True)
    data = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "machine": machine(),
        "steps": steps,
    }
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    rows = [
        f"| `{name}` | {minutes_seconds(step['seconds'])} |"
        + (f" {step['tests']} tests passed |" if step["tests"] else " |")
        for name, step in steps.items()
    ]
    REPORT.write_text(
        "# The README's commands on a fresh clone\n\n"
        f"{data['date']}, commit {commit}, {data['machine']}; `python -m bench.quickstart`, "
        "one step after the other, nothing else of this project running.\n\n"
        "| step | time | |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()

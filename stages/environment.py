"""`python -m stages.environment {lock,check,drift}`: the locked environment (a tool, not a stage).

    lock [--upgrade-package NAME ...]   re-resolve both locks from the intent files (`make lock`)
    check                               exit 1 when a lock is stale or misses an intent pin
                                        (`make lint`)
    drift                               exit 1 when this Python's packages are not the runtime
                                        lock's (`make run`, before `dvc repro`)

The locks are resolved by uv for Python 3.11 on Linux x86_64 (manylinux 2.28), the platform
the project supports and measures. uv prefers the versions a lock already holds, so `make lock`
after an intent edit moves only what the edit asks for; `--upgrade-package` moves one package
on purpose (docs: "Upgrading a dependency").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.lockfile import (
    LOCKS,
    drift,
    installed_versions,
    read_pins,
    stale_locks,
    stamp_lock,
    unlocked_pins,
)

PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")
RUNTIME_LOCK = "requirements.lock"


def compile_locks(root: Path, upgrade: list[str]) -> None:
    """Resolve each lock with uv from its intent file (the dev lock under the runtime lock)."""
    for lock, sources in LOCKS.items():
        command = [sys.executable, "-m", "uv", "pip", "compile", sources[0], "--quiet",
                   "--generate-hashes", *PLATFORM, "--custom-compile-command", "make lock",
                   "--output-file", lock]  # fmt: skip
        if lock != RUNTIME_LOCK:
            command += ["--constraint", RUNTIME_LOCK]
        for name in upgrade:
            command += ["--upgrade-package", name]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            why = " ".join(done.stderr.split())  # uv explains over several lines: one here
            raise UserError(f"{lock}: uv could not resolve {sources[0]}: {why}")
        stamp_lock(root, lock)


def check_locks(root: Path) -> list[str]:
    """Stale locks, and intent pins a lock does not hold at their version."""
    problems = stale_locks(root)
    if problems:
        return problems
    for lock, sources in LOCKS.items():
        locked = read_pins(root / lock)
        for pin in unlocked_pins(read_pins(root / sources[0]), locked):
            problems.append(f"{lock} does not hold {pin} — run `make lock`")
    return problems


def check_drift(root: Path) -> list[str]:
    """One line naming the packages of this Python that differ from the runtime lock."""
    moved = drift(read_pins(root / RUNTIME_LOCK), installed_versions())
    if not moved:
        return []
    return [
        f"this Python's packages differ from {RUNTIME_LOCK} ({'; '.join(moved)}) — reinstall "
        f"with `{Path(sys.executable).parent}/pip install --require-hashes -r {RUNTIME_LOCK}`"
    ]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("lock", "check", "drift"))
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                        help="with lock: let this package move to its newest version")  # fmt: skip
    parser.add_argument("--root", type=Path, default=Path("."), help="the project (default: .)")
    args = parser.parse_args(argv)
    if args.action == "lock":
        compile_locks(args.root, args.upgrade_package)
        return
    problems = check_locks(args.root) if args.action == "check" else check_drift(args.root)
    if problems:
        raise UserError("; ".join(problems))


if __name__ == "__main__":
    run_stage(main)

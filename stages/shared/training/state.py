"""A run's resumable state: its work dir (keyed by params, data and code), what
`callbacks.RunState` recorded per epoch, the epoch a killed run continues at, and its DVCLive
history trimmed to match."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from stages.shared.core.paths import WORK_DIR
from stages.shared.data.manifest import atomic_write_text
from stages.shared.training.distribute import worker_paths

STAGES_DIR = Path(__file__).resolve().parents[2]  # the code every training run is keyed on


FINE_TUNE = "fine_tune"  # phase 2's folder inside a run's work dir
PHASE1 = "phase1.keras"  # phase 1's best model, where phase 2 starts


def code_hash() -> str:
    """A hash of every Python file of the pipeline: a code change means a fresh start."""
    digest = hashlib.sha256()
    for path in sorted(STAGES_DIR.rglob("*.py")):
        digest.update(path.relative_to(STAGES_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def work_dir(stage: str, *inputs: Any) -> Path:
    """A git-ignored folder for resumable state, keyed by params, data and code.

    DVC deletes a stage's outputs before running it, so BackupAndRestore state and the best
    checkpoint live here instead. A different key means a fresh start; the state of other
    keys (abandoned runs) is deleted.
    """
    text = json.dumps([inputs, code_hash()], sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    state = Path(worker_paths({"state": (WORK_DIR / stage / key).as_posix()})["state"])
    if state.parent.is_dir():
        for stale in state.parent.iterdir():
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
    return state


def backup_epoch(phase_dir: Path) -> int:
    """The epoch BackupAndRestore resumes a phase at (0 when it has no backup)."""
    path = Path(phase_dir) / "backup" / "training_metadata.json"
    return int(json.loads(path.read_text())["epoch"]) if path.exists() else 0


def read_run_state(phase_dir: Path) -> dict:
    """What `RunState` recorded for a phase: snapshots by epoch, and whether it finished."""
    path = Path(phase_dir) / "run_state.json"
    return json.loads(path.read_text()) if path.exists() else {"epochs": {}, "finished": False}


def last_snapshot(phase_dir: Path) -> dict:
    """The latest snapshot of a phase (epochs run, best epoch, callback counters), or {}."""
    epochs = read_run_state(phase_dir)["epochs"]
    return epochs[max(epochs, key=int)] if epochs else {}


def resume_point(phase_dir: Path, start: int = 0) -> int:
    """The epoch a phase continues at: `start` for a fresh one, else its backup's epoch."""
    return max(start, backup_epoch(phase_dir))


def run_resume_point(state: Path) -> int:
    """The epoch a run continues at, in whichever phase it is: 0 for a fresh run."""
    if (state / PHASE1).exists():  # phase 1 is over: phase 2 goes on where it stopped
        return resume_point(state / FINE_TUNE, last_snapshot(state)["epochs_run"])
    return resume_point(state)


def run_epochs(state: Path) -> dict[str, int]:
    """Epochs run (all phases) and the best epoch (1-based) of a run, from its RunState."""
    for phase_dir in (state / FINE_TUNE, state):
        run = last_snapshot(phase_dir)
        if run:
            return {"epochs_run": run["epochs_run"], "best_epoch": run["best_epoch"]}
    return {"epochs_run": 0, "best_epoch": 0}


def trim_history(live_dir: Path, first: int) -> None:
    """Drop DVCLive rows of epochs ≥ `first`: an epoch logged but not backed up before a
    kill is trained again, and must be logged once. Kept rows keep their bytes."""
    for path in Path(live_dir).glob("plots/metrics/**/*.tsv"):
        header, *rows = path.read_text().splitlines()
        column = header.split("\t").index("step")
        kept = [row for row in rows if int(row.split("\t")[column]) < first]
        if len(kept) < len(rows):
            atomic_write_text(path, "\n".join([header, *kept]) + "\n")


def open_live(live_dir: str, first: int):
    """DVCLive for a training stage, resumed at epoch `first` (fresh when 0): no dvc.yaml
    edits, no experiment of its own."""
    from dvclive import Live

    if first:
        trim_history(Path(live_dir), first)
    return Live(live_dir, resume=first > 0, dvcyaml=False, save_dvc_exp=False)

"""The locked environment (stages/shared/core/lockfile.py, stages/environment.py): the locks hold
every intent pin, a stale lock or a drifted venv is named in one line, and `make lock`
resolves, pins and stamps offline from a folder of wheels."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stages import environment
from stages.shared.core.cli import UserError
from stages.shared.core.lockfile import (
    LOCKS,
    canonical,
    drift,
    read_pins,
    stale_locks,
    stamp_lock,
    unlocked_pins,
)

ROOT = Path(__file__).resolve().parents[1]
FILES = ("requirements.txt", "requirements-dev.txt", "requirements.lock", "requirements-dev.lock")


def copy_project(tmp_path: Path) -> Path:
    """The intent files and the committed locks, in a folder of their own."""
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def run_tool(*args: str) -> subprocess.CompletedProcess:
    """The tool as `make` runs it, in its own process."""
    return subprocess.run([sys.executable, "-m", "stages.environment", *args], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip


# --- the committed locks ---


def test_every_pin_of_the_intent_files_is_locked_at_its_version():
    for lock, sources in LOCKS.items():
        intent, locked = read_pins(ROOT / sources[0]), read_pins(ROOT / lock)
        assert len(intent) >= 20 and len(locked) > len(intent)  # the transitive ones too
        assert unlocked_pins(intent, locked) == [], lock


def test_the_dev_lock_holds_the_runtime_lock_at_the_same_versions():
    # `make test` installs the dev lock on top of the runtime one: one version of each package.
    runtime, dev = read_pins(ROOT / "requirements.lock"), read_pins(ROOT / "requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "pytest" in dev and "pytest" not in runtime


def test_the_committed_locks_are_current_and_every_package_has_a_hash():
    assert environment.check_locks(ROOT) == []
    for lock in LOCKS:
        text = (ROOT / lock).read_text()
        # Each `name==version` line goes on to its hashes: pip --require-hashes needs them.
        hashed = re.findall(r"^[A-Za-z0-9._-]+==\S+ \\\n    --hash=sha256:[0-9a-f]{64}", text, re.M)
        assert len(hashed) == len(read_pins(ROOT / lock)), lock


def test_this_python_runs_the_locked_versions():
    # What was tested is what runs: the venv the tests run in is the runtime lock.
    assert environment.check_drift(ROOT) == []


# --- reading pins ---


def test_pins_are_read_through_includes_extras_markers_and_hash_lines(tmp_path):
    (tmp_path / "base.txt").write_text("PyYAML==6.0.3\nruamel.yaml==0.18.1  # why\n")
    (tmp_path / "top.txt").write_text(
        "# a comment==1.0\n-r base.txt\n"
        "dvc[s3]==3.67.1\n"
        "numpy==2.4.6 ; python_version >= '3.11' \\\n    --hash=sha256:abc\n"
        "Pillow_Heif==1.8.1\\\n    --hash=sha256:def\n"
        "scipy>=1.0\n"
    )
    assert read_pins(tmp_path / "top.txt") == {
        "pyyaml": "6.0.3",
        "ruamel-yaml": "0.18.1",
        "dvc": "3.67.1",
        "numpy": "2.4.6",
        "pillow-heif": "1.8.1",
    }
    assert canonical("Typing_Extensions") == canonical("typing.extensions") == "typing-extensions"


# --- a stale lock ---


def test_an_edited_intent_file_makes_its_locks_stale_in_one_line(tmp_path):
    root = copy_project(tmp_path)
    assert stale_locks(root) == []
    with open(root / "requirements.txt", "a") as intent:
        intent.write("six==1.16.0\n")
    problems = stale_locks(root)
    # The runtime lock, and the dev lock that is resolved from requirements.txt too.
    assert [p.split(" ")[0] for p in problems] == ["requirements.lock", "requirements-dev.lock"]
    assert problems[1] == (
        "requirements-dev.lock is stale: requirements-dev.txt, requirements.txt, "
        "requirements.lock changed since it was resolved — run `make lock` and commit both locks"
    )
    stale = r"^requirements\.lock is stale: requirements\.txt changed since it was resolved"
    with pytest.raises(UserError, match=stale + " — run `make lock` and commit both locks; "):
        environment.main(["check", "--root", str(root)])
    # `make lint` runs it from the project: one line on stderr, exit 2.
    done = run_tool("check", "--root", str(root))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: requirements.lock is stale:")


def test_an_edited_dev_intent_leaves_the_runtime_lock_current(tmp_path):
    root = copy_project(tmp_path)
    with open(root / "requirements-dev.txt", "a") as intent:
        intent.write("six==1.16.0\n")
    assert [p.split(" ")[0] for p in stale_locks(root)] == ["requirements-dev.lock"]


def test_a_missing_lock_is_named(tmp_path):
    root = copy_project(tmp_path)
    (root / "requirements-dev.lock").unlink()
    assert stale_locks(root) == ["requirements-dev.lock is missing — run `make lock`"]
    (root / "requirements.lock").unlink()
    assert stale_locks(root) == [
        "requirements.lock is missing — run `make lock`",
        "requirements-dev.lock is missing — run `make lock`",
    ]


def test_the_dev_lock_is_stale_when_the_runtime_lock_it_was_resolved_under_is_gone(tmp_path):
    root = copy_project(tmp_path)
    (root / "requirements.lock").unlink()
    problems = stale_locks(root)
    assert problems[0] == "requirements.lock is missing — run `make lock`"
    assert problems[1].startswith("requirements-dev.lock is stale:")


def test_a_lock_edited_by_hand_that_drops_an_intent_pin_is_named(tmp_path):
    root = copy_project(tmp_path)
    dev = root / "requirements-dev.lock"
    dev.write_text(dev.read_text().replace("\npytest==9.2.0 ", "\npytest==9.1.0 "))
    assert stale_locks(root) == []  # its sources did not change: the stamp still matches
    named = r"^requirements-dev\.lock does not hold pytest==9\.2\.0 \(the lock has 9\.1\.0\)"
    with pytest.raises(UserError, match=named + " — run `make lock`$"):
        environment.main(["check", "--root", str(root)])
    assert unlocked_pins({"six": "1.16.0"}, {}) == ["six==1.16.0 (the lock has no version)"]


def test_stamping_twice_keeps_one_stamp(tmp_path):
    root = copy_project(tmp_path)
    before = (root / "requirements.lock").read_text()
    stamp_lock(root, "requirements.lock")
    stamp_lock(root, "requirements.lock")
    assert (root / "requirements.lock").read_text() == before


# --- a drifted environment ---


def test_drift_names_a_moved_and_a_missing_package_and_ignores_extras():
    locked = {"numpy": "2.4.6", "keras": "3.15.1", "h5py": "3.15.1"}
    installed = {"numpy": "2.4.7", "h5py": "3.15.1", "pytest": "9.2.0"}
    assert drift(locked, installed) == [
        "keras: not installed, 3.15.1 locked",
        "numpy: 2.4.7 installed, 2.4.6 locked",
    ]


def test_make_run_stops_in_one_line_on_a_venv_that_left_the_lock(tmp_path, monkeypatch):
    from importlib import metadata

    numpy, yaml_version = metadata.version("numpy"), metadata.version("pyyaml")
    (tmp_path / "requirements.lock").write_text(f"numpy==0.0.1\nPyYAML=={yaml_version}\n")
    monkeypatch.chdir(tmp_path)  # `make run` runs it from the project
    with pytest.raises(UserError) as err:
        environment.main(["drift"])
    assert str(err.value) == (
        f"this Python's packages differ from requirements.lock (numpy: {numpy} installed, "
        f"0.0.1 locked) — reinstall with `{Path(sys.executable).parent}/pip install "
        "--require-hashes -r requirements.lock`"
    )
    environment.main(["drift", "--root", str(ROOT)])  # the committed lock: this venv holds it
    done = run_tool("drift", "--root", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_the_help_names_each_action_and_option(capsys):
    with pytest.raises(SystemExit):
        environment.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "`python -m stages.environment {lock,check,drift}`: the locked environment" in shown
    assert "{lock,check,drift}" in shown and "--root ROOT the project (default: .)" in shown
    assert "--upgrade-package NAME with lock: let this package move to its newest version" in shown


# --- `make lock`, offline ---


def write_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A pure-Python wheel with only its metadata: all a resolver reads."""
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    tag = "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{info}/METADATA", meta)
        wheel.writestr(f"{info}/WHEEL", tag)
        wheel.writestr(f"{info}/RECORD", "")


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A folder of wheels uv reads instead of the package index: alpha needs beta (1.0 and
    2.0 exist), the dev tool gamma needs beta too."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "alpha", "1.0", ("beta>=1",))
    write_wheel(wheels, "beta", "1.0")
    write_wheel(wheels, "beta", "2.0")
    write_wheel(wheels, "gamma", "3.0", ("beta",))
    for name, value in (("UV_NO_INDEX", "1"), ("UV_OFFLINE", "1"), ("UV_FIND_LINKS", wheels),
                        ("UV_CACHE_DIR", tmp_path / "uv-cache")):  # fmt: skip
        monkeypatch.setenv(name, str(value))
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("alpha==1.0\n")
    (project / "requirements-dev.txt").write_text("-r requirements.txt\ngamma==3.0\n")
    return project


def lock(project: Path, *upgrade: str) -> None:
    """`make lock [UPGRADE=...]` in `project`."""
    environment.main(["lock", "--root", str(project), *[f"--upgrade-package={u}" for u in upgrade]])


def test_make_lock_pins_every_package_with_hashes_and_stamps_both_locks(index, monkeypatch):
    monkeypatch.chdir(index)  # `make lock` runs it from the project
    environment.main(["lock"])
    assert read_pins(index / "requirements.lock") == {"alpha": "1.0", "beta": "2.0"}
    assert read_pins(index / "requirements-dev.lock") == {
        "alpha": "1.0", "beta": "2.0", "gamma": "3.0"
    }  # fmt: skip
    assert (index / "requirements.lock").read_text().count("--hash=sha256:") == 2
    assert "#    make lock\n" in (index / "requirements.lock").read_text()  # how to redo it
    assert environment.check_locks(index) == []


def test_make_lock_keeps_the_locked_versions_unless_told_to_upgrade_one(index):
    lock(index)
    for name in LOCKS:  # as if beta 1.0 had been the newest when the lock was made
        path = index / name
        path.write_text(path.read_text().replace("beta==2.0", "beta==1.0"))
    (index / "requirements-dev.txt").write_text("-r requirements.txt\ngamma==3.0\n# a note\n")
    lock(index)
    assert read_pins(index / "requirements-dev.lock")["beta"] == "1.0"  # an edit moves nothing
    # The dev lock follows the runtime lock even with no preferences of its own.
    (index / "requirements-dev.lock").unlink()
    lock(index)
    assert read_pins(index / "requirements-dev.lock")["beta"] == "1.0"
    lock(index, "beta")
    assert read_pins(index / "requirements.lock")["beta"] == "2.0"
    assert read_pins(index / "requirements-dev.lock")["beta"] == "2.0"


def test_make_lock_names_a_pin_it_cannot_resolve_in_one_line(index):
    (index / "requirements.txt").write_text("alpha==9.9\n")
    with pytest.raises(UserError, match=r"^requirements\.lock: uv could not resolve "
                                        r"requirements\.txt: \S.*alpha==9\.9") as err:  # fmt: skip
        lock(index)
    assert "\n" not in str(err.value)

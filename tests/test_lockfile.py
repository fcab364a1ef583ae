"""The locked environment (stages/shared/core/lockfile.py, stages/environment.py): the locks hold
every intent pin, a stale lock or a drifted venv is named in one line, and `make lock`
resolves, pins and stamps offline from a folder of wheels."""

from __future__ import annotations

import os
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


def run_tool(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.environment", *args], cwd=ROOT,
                          capture_output=True, text=True, env=env)  # fmt: skip


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
    stale = r"^requirements\.lock is stale: requirements\.txt changed since it was resolved"
    with pytest.raises(UserError, match=stale + " — run `make lock`"):
        environment.main(["check", "--root", str(root)])
    done = run_tool("check", "--root", str(root))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "make lock" in done.stderr


def test_an_edited_dev_intent_leaves_the_runtime_lock_current(tmp_path):
    root = copy_project(tmp_path)
    with open(root / "requirements-dev.txt", "a") as intent:
        intent.write("six==1.16.0\n")
    assert [p.split(" ")[0] for p in stale_locks(root)] == ["requirements-dev.lock"]


def test_a_missing_lock_is_named(tmp_path):
    root = copy_project(tmp_path)
    (root / "requirements-dev.lock").unlink()
    assert stale_locks(root) == ["requirements-dev.lock is missing — run `make lock`"]


def test_a_lock_edited_by_hand_that_drops_an_intent_pin_is_named(tmp_path):
    root = copy_project(tmp_path)
    dev = root / "requirements-dev.lock"
    dev.write_text(dev.read_text().replace("\npytest==9.2.0 ", "\npytest==9.1.0 "))
    assert stale_locks(root) == []  # its sources did not change: the stamp still matches
    with pytest.raises(UserError, match=r"requirements-dev\.lock does not hold pytest==9\.2\.0 "
                                        r"\(the lock has 9\.1\.0\) — run `make lock`"):  # fmt: skip
        environment.main(["check", "--root", str(root)])


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


def test_make_run_stops_in_one_line_on_a_venv_that_left_the_lock(tmp_path):
    from importlib import metadata

    numpy = metadata.version("numpy")
    yaml_version = metadata.version("pyyaml")
    (tmp_path / "requirements.lock").write_text(f"numpy==0.0.1\nPyYAML=={yaml_version}\n")
    done = run_tool("drift", "--root", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"(numpy: {numpy} installed, 0.0.1 locked)" in done.stderr
    assert "pyyaml" not in done.stderr  # at its locked version
    assert "pip install --require-hashes -r requirements.lock" in done.stderr


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
def index(tmp_path):
    """A folder of wheels uv reads instead of the package index: alpha needs beta (1.0 and
    2.0 exist), the dev tool gamma needs beta too."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "alpha", "1.0", ("beta>=1",))
    write_wheel(wheels, "beta", "1.0")
    write_wheel(wheels, "beta", "2.0")
    write_wheel(wheels, "gamma", "3.0", ("beta",))
    env = {**os.environ, "UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheels),
           "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1"}  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("alpha==1.0\n")
    (project / "requirements-dev.txt").write_text("-r requirements.txt\ngamma==3.0\n")
    return project, env


def test_make_lock_pins_every_package_with_hashes_and_stamps_both_locks(index):
    project, env = index
    done = run_tool("lock", "--root", str(project), env=env)
    assert done.returncode == 0, done.stderr
    assert read_pins(project / "requirements.lock") == {"alpha": "1.0", "beta": "2.0"}
    assert read_pins(project / "requirements-dev.lock") == {
        "alpha": "1.0", "beta": "2.0", "gamma": "3.0"
    }  # fmt: skip
    assert (project / "requirements.lock").read_text().count("--hash=sha256:") == 2
    assert environment.check_locks(project) == []


def test_make_lock_keeps_the_locked_versions_unless_told_to_upgrade_one(index):
    project, env = index
    assert run_tool("lock", "--root", str(project), env=env).returncode == 0
    for lock in LOCKS:  # as if beta 1.0 had been the newest when the lock was made
        path = project / lock
        path.write_text(path.read_text().replace("beta==2.0", "beta==1.0"))
    (project / "requirements-dev.txt").write_text("-r requirements.txt\ngamma==3.0\n# a note\n")
    assert run_tool("lock", "--root", str(project), env=env).returncode == 0
    assert read_pins(project / "requirements-dev.lock")["beta"] == "1.0"  # an edit moves nothing
    # The dev lock follows the runtime lock even with no preferences of its own.
    (project / "requirements-dev.lock").unlink()
    assert run_tool("lock", "--root", str(project), env=env).returncode == 0
    assert read_pins(project / "requirements-dev.lock")["beta"] == "1.0"
    upgrade = run_tool("lock", "--root", str(project), "--upgrade-package", "beta", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert read_pins(project / "requirements.lock")["beta"] == "2.0"
    assert read_pins(project / "requirements-dev.lock")["beta"] == "2.0"


def test_make_lock_names_a_pin_it_cannot_resolve(index):
    project, env = index
    (project / "requirements.txt").write_text("alpha==9.9\n")
    done = run_tool("lock", "--root", str(project), env=env)
    assert done.returncode == 2 and done.stderr.startswith(
        "error: requirements.lock: uv could not resolve requirements.txt:"
    ), done.stderr

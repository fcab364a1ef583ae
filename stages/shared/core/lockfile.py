"""The locked environment: which exact package versions the project installs, and whether a
lock or a virtual environment has drifted from what was tested.

`requirements.txt` and `requirements-dev.txt` are the human-edited intent (the packages the
project chooses, pinned); `requirements.lock` and `requirements-dev.lock` are every package
those bring, at one version each with its hashes, resolved by uv for Python 3.11 on Linux
x86_64 (`make lock`). Each lock starts with a stamp: the sha256 of the files it was resolved
from, so a lock that no longer matches its intent is found without asking the package index.
"""

from __future__ import annotations

import hashlib
import re
from importlib import metadata
from pathlib import Path

# Each lock and the files it is resolved from, in the order `make lock` resolves them: the
# dev lock is resolved under the runtime lock (`-c`), so both hold one version of a package.
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements.lock": ("requirements.txt",),
    "requirements-dev.lock": ("requirements-dev.txt", "requirements.txt", "requirements.lock"),
}
STAMP = "# intent sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)
INCLUDE = re.compile(r"^-r\s+(\S+)", re.M)


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares it: `PyYAML`, `pyyaml` → `pyyaml`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line, following `-r` includes."""
    text = path.read_text()
    pins: dict[str, str] = {}
    for included in INCLUDE.findall(text):
        pins.update(read_pins(path.parent / included))
    pins.update({canonical(name): version for name, version in PIN.findall(text)})
    return pins


def intent_digest(root: Path, sources: tuple[str, ...]) -> str:
    """sha256 over the bytes of the files a lock is resolved from, in order (a missing one
    counts as absent, so the lock resolved under it is stale)."""
    digest = hashlib.sha256()
    for source in sources:
        path = root / source
        content = path.read_bytes() if path.exists() else b"absent"
        digest.update(source.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def stamp_lock(root: Path, lock: str) -> None:
    """Write the stamp of the lock's sources as the lock's first line (`make lock` does)."""
    path = root / lock
    body = "".join(line for line in path.read_text().splitlines(True) if not line.startswith(STAMP))
    path.write_text(f"{STAMP}{intent_digest(root, LOCKS[lock])}\n{body}")


def stale_locks(root: Path) -> list[str]:
    """One line per lock that is missing or was resolved from other intent files."""
    problems = []
    for lock, sources in LOCKS.items():
        path = root / lock
        if not path.exists():
            problems.append(f"{lock} is missing — run `make lock`")
            continue
        first = path.read_text().partition("\n")[0]
        if first != STAMP + intent_digest(root, sources):
            changed = ", ".join(sources)
            problems.append(
                f"{lock} is stale: {changed} changed since it was resolved — run `make lock` "
                "and commit both locks"
            )
    return problems


def unlocked_pins(intent: dict[str, str], locked: dict[str, str]) -> list[str]:
    """The intent's pins that the lock does not hold at the same version, one line each."""
    return [
        f"{name}=={version} (the lock has {locked.get(name, 'no version')})"
        for name, version in sorted(intent.items())
        if locked.get(name) != version
    ]


def installed_versions() -> dict[str, str]:
    """{canonical name: version} of every distribution this Python sees."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def drift(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """The locked packages missing or at another version here: `name: X installed, Y locked`.
    Extra packages (the dev tools, the user's own) are not drift: nothing locked imports them."""
    return [
        f"{name}: {installed.get(name, 'not')} installed, {version} locked"
        for name, version in sorted(locked.items())
        if installed.get(name) != version
    ]

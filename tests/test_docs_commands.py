"""Commands that run: every `bash` block of the README and the docs pages, run as written, in
order, on a small project (the pipeline with tiny params, after its first `dvc repro`), one
project per page. A block that cannot run here says why on the line above it:
`<!-- not run here: <reason> -->`.

What a reader brings is in place before a page starts, as its text assumes: a DVC remote,
folders of their own photos (`photos/`, `more/`, `frames/`) and two datasets for transfer
learning (`datasets/big`, `datasets/mine`), committed. `make test-docs` runs the pages (and CI);
`make test` leaves them out: together they take longer than the rest of the suite.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bench.project import ROOT, dvc, git, run_cli
from stages.shared.core.lockfile import LOCKS

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!-- not run here: (.+?) -->\n$")
SHELLS = ("bash", "sh", "shell", "console", "zsh")


def shell_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, commands, reason it is not run, or None) for every shell block of a page."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) not in SHELLS:
            continue
        before = text[: match.start()]
        reason = NOT_RUN.search(before[-300:])
        line = before.count("\n") + 1
        found.append((line, match.group(2), reason.group(1) if reason else None))
    return found


def test_every_shell_block_is_bash_and_runnable_or_says_why_not():
    blocks = {page.name: shell_blocks(page) for page in PAGES}
    assert sum(len(b) for b in blocks.values()) > 10
    for page, found in blocks.items():
        for line, _, reason in found:
            assert reason is None or len(reason.split()) >= 2, f"{page}:{line}: say why"
    # Fenced shell code in another dialect would escape the walk-through below.
    others = [
        (page.name, match.group(1))
        for page in PAGES
        for match in FENCE.finditer(page.read_text())
        if match.group(1) in SHELLS and match.group(1) != "bash"
    ]
    assert others == []


def test_the_block_reader_sees_a_reason_only_right_above_its_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- not run here: a GPU box -->\n```bash\nnvidia-smi\n```\n\n"
        "```bash\nls\n```\n\n```yaml\na: 1\n```\n"
    )
    assert shell_blocks(page) == [(4, "nvidia-smi\n", "a GPU box"), (8, "ls\n", None)]


def reader_context(project: Path) -> None:
    """What a reader has before following a page: the tools (the venv, the Makefile), a DVC
    remote, their own photos, and two datasets for transfer learning."""
    (project / ".venv").symlink_to(ROOT / ".venv")
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", *LOCKS):
        shutil.copy2(ROOT / name, project / name)  # keeps their dates: make installs nothing
    dvc("remote", "add", "-d", "shared", str(project.parent / "remote"), cwd=project)
    digits = sorted((project / "data/sample/classification").iterdir())
    frames = sorted((project / "data/sample/detection/images").iterdir())
    for folder, files in (
        ("photos", [next(d.iterdir()) for d in digits[:3]]),
        ("more", [next(d.iterdir()) for d in digits[3:5]]),
        ("frames", frames[:4]),
    ):
        (project / folder).mkdir()
        for file in files:
            shutil.copy(file, project / folder / file.name)
    for name, classes in (("big", digits[:5]), ("mine", digits[5:])):
        for digit in classes:
            shutil.copytree(digit, project / "datasets" / name / digit.name)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "results and the reader's files", cwd=project)


@pytest.mark.slow
@pytest.mark.docs
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_of_the_page_runs_on_a_small_project(page, reproduced_project):
    blocks = [(line, commands) for line, commands, reason in shell_blocks(page) if not reason]
    if not blocks:
        assert all(reason for _, _, reason in shell_blocks(page))
        return
    project = reproduced_project
    reader_context(project)
    for line, commands in blocks:
        done = run_cli(["bash", "-euo", "pipefail", "-c", commands], project, check=False)
        assert done.returncode == 0, (
            f"{page.name}:{line} exited {done.returncode}:\n{commands}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
        assert "Traceback" not in done.stderr, f"{page.name}:{line}:\n{done.stderr[-3000:]}"

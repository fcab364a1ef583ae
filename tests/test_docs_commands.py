"""Commands that run: every `bash` block of the README and the docs pages, run as written, in
order, on a small project (the pipeline with tiny params, after its first `dvc repro`). Each
`##` section of a page is a test of its own, on its own project, as a reader who comes to the
section through a link starts it: so a section relies on one above it only where it says so
under its heading (`<!-- runs after the section above -->`), and the sections of a long page
run on both workers. A block that cannot run here says why on the line above
it: `<!-- not run here: <reason> -->`.

What a reader brings is in place before a section starts, as its text assumes: a DVC remote,
folders of their own photos (`photos/`, `more/`, `frames/`) and two datasets for transfer
learning (`datasets/big`, `datasets/mine`), committed. The walk-through runs at toy size: the
tiny params, and `SEEDS=2` for `make compare`'s seeds. `make test-docs` runs the pages (and CI);
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
SECTION = re.compile(r"^## (.+)$", re.MULTILINE)
AFTER = "<!-- runs after the section above -->"  # right under a heading: one part with it
TOY_SIZE = "export SEEDS=2\n"  # what the reader's shell holds: `make compare` at two seeds
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


def anchor(heading: str) -> str:
    """A heading's anchor as the site makes it (lower case, words joined by hyphens)."""
    return "-".join(re.sub(r"[^\w\s-]", "", heading.lower()).split())


def page_parts(page: Path) -> list[tuple[str, list[tuple[int, str]]]]:
    """(section anchor, the blocks of it that run) for each part of a page with such a
    block: the text above the first `##` heading ("top"), then each `##` section. A section
    that needs the one above it done says so under its heading (AFTER) and joins its part."""
    text = page.read_text()
    starts = [(0, "top", False)] + [
        (m.start(), anchor(m.group(1)), text[m.end() :].lstrip().startswith(AFTER))
        for m in SECTION.finditer(text)
    ]
    ends = [start for start, _, _ in starts[1:]] + [len(text)]
    runs = [(line, commands) for line, commands, reason in shell_blocks(page) if reason is None]
    parts: list[tuple[str, list[tuple[int, str]]]] = []
    for (start, name, after), end in zip(starts, ends, strict=True):
        first, last = text[:start].count("\n") + 1, text[:end].count("\n") + 1
        blocks = [(line, commands) for line, commands in runs if first <= line < last]
        if after and parts:
            parts[-1] = (parts[-1][0], parts[-1][1] + blocks)
        elif blocks:
            parts.append((name, blocks))
    return parts


PARTS = [(page, name, blocks) for page in PAGES for name, blocks in page_parts(page)]


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


def test_a_page_is_cut_at_its_sections_and_every_block_that_runs_is_in_one_part(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n```bash\nls\n```\n\n## First, the set-up!\n\n```bash\npwd\n```\n\n"
        "<!-- not run here: a GPU box -->\n```bash\nnvidia-smi\n```\n\n"
        "## Only prose\n\ntext\n\n## Last\n\n```bash\ndate\n```\n\n```bash\nid\n```\n"
        f"\n## Then\n\n{AFTER}\n\n```bash\nuname\n```\n"
    )
    assert page_parts(page) == [
        ("top", [(3, "ls\n")]),
        ("first-the-set-up", [(9, "pwd\n")]),
        ("last", [(24, "date\n"), (28, "id\n"), (36, "uname\n")]),  # with the one after it
    ]
    runs = {(line, c) for line, c, reason in shell_blocks(page) if reason is None}
    assert runs == {block for _, blocks in page_parts(page) for block in blocks}
    for page in PAGES:  # the real pages: no block that runs is left out of the parts
        runs = [(line, c) for line, c, reason in shell_blocks(page) if reason is None]
        parts = [block for part, _, blocks in PARTS if part == page for block in blocks]
        assert sorted(parts) == sorted(runs), page.name


@pytest.mark.slow
@pytest.mark.docs
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(
    ("page", "section", "blocks"), PARTS, ids=[f"{p.name}#{name}" for p, name, _ in PARTS]
)
def test_every_command_of_the_section_runs_on_a_small_project(
    page, section, blocks, reproduced_project
):
    project = reproduced_project
    reader_context(project)
    for line, commands in blocks:
        done = run_cli(
            ["bash", "-euo", "pipefail", "-c", TOY_SIZE + commands], project, check=False
        )
        assert done.returncode == 0, (
            f"{page.name}:{line} exited {done.returncode}:\n{commands}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
        assert "Traceback" not in done.stderr, f"{page.name}:{line}:\n{done.stderr[-3000:]}"

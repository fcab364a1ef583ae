"""Every make target runs somewhere: in CI (`.ci/run`), in the docs walk-through (a block of the
README or docs/ that `make test-docs` runs), in `make bench-smoke` (bench/smoke.py), or through
its command in a test; or it is named here with the reason it runs nowhere. Code that nothing
runs rots: `make bench` once failed for months on an import no check ran."""

from __future__ import annotations

import re

from bench import smoke
from bench.project import ROOT
from tests.test_docs_commands import PAGES, shell_blocks

# Targets no check runs, and why.
NOWHERE = {
    "docs-serve": "a server that runs until stopped; `make docs` builds the same site",
    "format": "rewrites the tree; `make lint` runs the same tools with --check",
    "review-screenshot": "rewrites docs/review-page.png; the browser test takes the same shot",
    "test-fast": "`make test` less its slow tests, for a quicker loop; CI runs `make test`",
    "clean": "deletes the caches the other targets make",
}


def phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return set(re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split())


def recipes() -> dict[str, str]:
    """Each target's recipe lines, joined."""
    found, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if match := re.match(r"^([a-z][a-z-]*):(?!=)", line):
            current = match.group(1)
            found[current] = ""
        elif line.startswith("\t") and current:
            found[current] += line + "\n"
        else:
            current = None
    return found


def modules_of(recipe: str) -> set[str]:
    """The Python modules a recipe runs (`python -m X`), pytest and ruff apart."""
    return set(re.findall(r"python -m ([a-z_.]+)", recipe)) - {"pytest", "pip"}


def where_it_runs() -> dict[str, str]:
    ci = (ROOT / ".ci/run").read_text()
    walked = " ".join(cmd for page in PAGES for _, cmd, reason in shell_blocks(page) if not reason)
    smoked = {args[1] for args, _ in smoke.ENTRY_POINTS.values() if args[0] == "-m"}
    tests = " ".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py")
                     if p.name != "test_make_targets.py")  # fmt: skip
    found = {}
    for target, recipe in recipes().items():
        mentioned = re.compile(rf"\bmake {re.escape(target)}(?![\w-])")
        modules = modules_of(recipe)
        if mentioned.search(ci):
            found[target] = "CI"
        elif mentioned.search(walked):
            found[target] = "the docs walk-through"
        elif modules and modules <= smoked:
            found[target] = "make bench-smoke"
        elif modules and all(f'"{m}"' in tests or f"'{m}'" in tests for m in modules):
            found[target] = "a test runs its command"
    return found


def test_every_phony_target_runs_somewhere_or_says_why_not():
    runs = where_it_runs()
    missing = sorted(phony_targets() - set(runs) - set(NOWHERE))
    assert not missing, f"make targets no check runs: {missing}"


def test_a_target_named_as_running_nowhere_really_runs_nowhere():
    # A reason kept after the target found a place to run would hide nothing, but mislead.
    assert not set(NOWHERE) & set(where_it_runs())
    assert set(NOWHERE) <= phony_targets()
    assert all(len(reason.split()) >= 5 for reason in NOWHERE.values())


def test_the_check_finds_each_kind_of_place():
    runs = where_it_runs()
    assert runs["lint"] == "CI" and runs["bench-smoke"] == "CI"
    assert runs["run"] == "the docs walk-through"
    assert runs["noise-floor"] == "make bench-smoke"
    assert runs["lock"] == "a test runs its command"  # stages.environment, in test_lockfile

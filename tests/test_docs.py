"""The documentation: a short README, a site that builds with --strict and works offline, a
params reference that covers every key and is not stale, and no run log in the prose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from stages import params_reference
from tests.conftest import ROOT, offline_page

PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The attributes through which a page makes the browser fetch something (a link, <a href>, is
# only followed when clicked, so it may point anywhere).
FETCHING = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
}
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class Fetches(HTMLParser):
    """Every URL an HTML page makes the browser fetch on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        names = FETCHING.get(tag, ())
        if tag == "link" and (values.get("rel") or "") not in ("next", "prev", "canonical"):
            names = ("href",)
        for name in names:
            for url in re.split(r",\s*", values.get(name) or ""):
                if url.strip():
                    self.urls.append(url.strip().split(" ")[0])


def external_fetches(site: Path) -> dict[str, list[str]]:
    """Per file of the site, the external URLs it would fetch (HTML tags, CSS url()/@import)."""
    found = {}
    for path in sorted(site.rglob("*")):
        if path.suffix == ".html":
            parser = Fetches()
            parser.feed(path.read_text(encoding="utf-8"))
            urls = [u for u in parser.urls if EXTERNAL.match(u)]
        elif path.suffix == ".css":
            text = path.read_text(encoding="utf-8")
            urls = re.findall(
                r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", text
            )
        else:
            continue
        if urls:
            found[str(path.relative_to(site))] = urls
    return found


def test_the_scan_finds_each_kind_of_external_fetch(tmp_path):
    (tmp_path / "a.html").write_text(
        '<a href="https://example.org">a link is fine</a>'
        '<link rel="next" href="https://example.org/next">'
        '<script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/css">'
        '<img srcset="local.png 1x, https://img.example.org/y.png 2x">'
        '<script src="assets/local.js"></script>'
    )
    (tmp_path / "b.css").write_text(
        "@import 'https://fonts.example.org/f.css'; a { background: url(local.png) }"
        " b { background: url('http://img.example.org/z.png') }"
    )
    (tmp_path / "c.html").write_text('<script src="assets/x.js"></script>')
    assert external_fetches(tmp_path) == {
        "a.html": [
            "https://cdn.example.org/x.js",
            "//fonts.example.org/css",
            "https://img.example.org/y.png",
        ],
        "b.css": ["https://fonts.example.org/f.css", "http://img.example.org/z.png"],
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `make docs` builds it, with --strict, into a folder of its own."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_builds_strict_with_every_page_and_fetches_nothing_external(site):
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = [next(iter(entry.values())) for entry in nav]
    assert sorted(pages) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    for page in pages:
        assert (site / page.replace(".md", ".html")).is_file()
    assert external_fetches(site) == {}
    # The measured files are included as the tools wrote them, not linked to a missing page.
    performance = (site / "performance.html").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|-][^|]*?) \|", (ROOT / "bench/RESULTS.md").read_text(), re.M)
    assert len(rows) > 2 and rows[1] in performance  # rows[0] is the header


@pytest.mark.browser
def test_a_page_and_its_search_work_with_every_request_off_the_machine_blocked(site):
    with offline_page() as (page, errors, leaving):
        page.goto((site / "data.html").as_uri())
        title = page.title()
        styled = page.evaluate(
            "() => getComputedStyle(document.querySelector('.md-header')).position"
        )
        # Search, from the file system: the index is inlined and the worker runs in an iframe.
        page.keyboard.press("/")  # the theme's search shortcut
        page.wait_for_function(  # the index is loaded ("Initializing search" before)
            "() => document.querySelector('.md-search-result__meta').textContent"
            ".includes('Type to start')",
            timeout=30_000,
        )
        page.locator("input.md-search__input").press_sequentially("duplicates", delay=20)
        page.wait_for_selector(".md-search-result__item", timeout=30_000)
        hits = page.locator(".md-search-result__item").count()
    assert leaving == [] and errors == []
    assert title.startswith("Your data")
    assert styled in ("sticky", "fixed")  # the theme's stylesheet loaded
    assert hits > 0


def test_the_params_page_covers_every_key_and_is_current():
    page, missing = params_reference.render()
    assert missing == []
    assert (ROOT / "docs/params.md").read_text() == page, (
        "docs/params.md is stale: run python -m stages.params_reference"
    )

    def keys(node, where):
        for key, value in node.items():
            yield ".".join((*where, key))
            if isinstance(value, dict):
                yield from keys(value, (*where, key))

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    every = {k for section, body in params.items() for k in keys(body, (section,))}
    listed = set(re.findall(r"^\| `([a-z_.]+)` \|", page, re.MULTILINE))
    assert listed == every
    assert set(re.findall(r"^## `([a-z_]+)`$", page, re.MULTILINE)) == set(params)


def test_a_key_without_a_description_is_named(tmp_path, monkeypatch):
    text = (ROOT / "params.yaml").read_text()
    bare = text.replace(
        "  dpi: 110                    # resolution of the PNG figures\n", "  dpi: 110\n"
    )
    assert bare != text
    (tmp_path / "params.yaml").write_text(bare)
    page, missing = params_reference.render(tmp_path / "params.yaml")
    assert missing == ["plot.dpi"]
    assert "| `plot.dpi` | integer, ≥ 50, ≤ 400 | `110` |  |" in page


def test_the_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    stale = tmp_path / "params.md"
    stale.write_text("# Params reference\n")
    with pytest.raises(SystemExit) as stop:
        params_reference.main(["--check", "--out", str(stale)])
    assert stop.value.code == 1
    assert "is stale: run python -m stages.params_reference" in capsys.readouterr().err
    params_reference.main(["--out", str(stale)])
    params_reference.main(["--check", "--out", str(stale)])  # now current: no exit


def test_the_readme_is_short_and_answers_the_first_questions_on_its_first_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:60])
    for answer in ("make run", "make test", "## Your own data", "data:"):
        assert answer in first_screen


def test_no_prose_carries_a_dated_run_log():
    dated = {
        str(p.relative_to(ROOT)): re.findall(r"\b20\d\d-\d\d-\d\d\b", p.read_text()) for p in PROSE
    }
    assert {name: dates for name, dates in dated.items() if dates} == {}


def test_each_section_names_the_stages_that_depend_on_it(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "split": {"foreach": "${data}", "do": {"cmd": "x", "params": ["base.seed"]}},
                    "train": {"cmd": "y", "params": ["base.image_size.a", "train"]},
                    "report": {"cmd": "z"},
                }
            }
        )
    )
    assert params_reference.readers(tmp_path / "dvc.yaml") == {
        "base": ["split@*", "train"],
        "data": ["split@*"],
        "train": ["train"],
    }
    page, _ = params_reference.render()
    assert "## `plot`\n\nStages that depend on it (a change re-runs them): `plot@*`." in page


def test_the_readme_quotes_the_timed_fresh_clone():
    """The README's times are the ones `python -m bench.quickstart` measured and wrote."""
    from bench.quickstart import RESULTS, minutes_seconds

    steps = json.loads(RESULTS.read_text())["steps"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    for name in ("install", "make run", "make test", "make test-docs"):
        assert minutes_seconds(steps[name]["seconds"]) in readme, name
    assert f"{steps['make test']['tests']} tests" in readme
    assert "bench/QUICKSTART.md" in readme


def test_the_fresh_clone_timer_reads_pytest_and_rounds_to_seconds():
    from bench.quickstart import minutes_seconds, tests_passed

    assert (
        tests_passed("... 12 passed in 3s\n== 2 failed, 677 passed, 6 warnings in 1034.88s ==")
        == 677
    )
    assert tests_passed("make: nothing to be done") is None
    assert minutes_seconds(1034.88) == "17 min 15 s"
    assert minutes_seconds(59.4) == "0 min 59 s"

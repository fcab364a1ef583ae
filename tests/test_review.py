"""The review page: `make review` / `dvc plots diff` render every plot with no network.

The browser test builds the page for two revisions of a copy of the committed reports, opens it
in headless Chromium with every request that is not a local file blocked, and checks what a
reviewer would see: each plot of dvc.yaml drawn, each figure loaded, no error in the console.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages import review
from tests.conftest import ROOT, copy_dvc_setup, help_text, offline_page

DRAWN = "canvas.marks, svg.marks"  # vega's drawing (vega-embed's menu icon is an svg too)


def test_the_committed_template_is_the_installed_vl_convert_bundle():
    # A vl-convert upgrade without `python -m stages.review --template` would leave the page
    # drawing with another Vega-Lite than the PNG figures.
    assert review.TEMPLATE.read_text(encoding="utf-8") == review.template_text()


def test_every_clone_uses_the_offline_template():
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "config", "plots.html_template"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (ROOT / ".dvc" / done.stdout.strip()).resolve() == review.TEMPLATE
    page = review.TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing for the browser to fetch


def test_a_missing_revision_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(review.UserError, match=r"dvc plots diff no-such-rev .*failed: "):
        review.write_page("no-such-rev", tmp_path / "page")


def commit_all(repo: Path, message: str) -> None:
    for args in (
        ["add", "-A"],
        ["-c", "user.name=r", "-c", "user.email=r@r", "commit", "-qm", message],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def two_revisions(tmp_path) -> Path:
    """A repository with the committed reports at HEAD~1 and changed ones in HEAD."""
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_dvc_setup(repo)
    for name in ("dvc.yaml", "paths.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    # The committed reports (TensorBoard's event files are git-ignored and no plot reads them).
    shutil.copytree(
        ROOT / "reports", repo / "reports", ignore=shutil.ignore_patterns("tensorboard")
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    commit_all(repo, "before")
    # The second revision: a worse classifier (two predictions changed, a higher val loss).
    predictions = repo / "reports/eval/classifier/predictions.csv"
    frame = pd.read_csv(predictions, dtype=str)
    frame.loc[:1, "predicted"] = frame.loc[:1, "actual"].map(lambda c: "0" if c != "0" else "1")
    frame.to_csv(predictions, index=False)
    loss = repo / "reports/train/classifier/plots/metrics/eval/loss.tsv"
    history = pd.read_csv(loss, sep="\t")
    history["loss"] *= 1.5
    history.to_csv(loss, sep="\t", index=False)
    commit_all(repo, "after")
    return repo


@pytest.mark.browser
def test_the_review_page_renders_every_plot_offline(two_revisions, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "stages.review", "HEAD~1", "--out", "page"],
        cwd=two_revisions,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    page_path = Path(done.stdout.strip())
    assert page_path == (two_revisions / "page/index.html").resolve()
    html = page_path.read_text(encoding="utf-8")
    plot_ids = re.findall(r"vegaEmbed\('#([^']+)'", html)
    defined = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    data_plots = [d for d in defined if not isinstance(d, str)]  # a string: a folder of images
    assert len(plot_ids) == len(data_plots)
    assert '"rev": "HEAD~1"' in html and '"rev": "workspace"' in html

    with offline_page(viewport={"width": 1400, "height": 1000}) as (page, errors, leaving):
        page.goto(page_path.as_uri())
        drawn = page.evaluate(
            """ids => new Promise(done => {
                const blank = id => !document.getElementById(id).querySelector(DRAWN);
                const check = () => ids.filter(blank);
                const started = Date.now();
                (function poll() {
                    const missing = check();
                    if (missing.length === 0 || Date.now() - started > 30000) done(missing);
                    else setTimeout(poll, 100);
                })();
            })""".replace("DRAWN", repr(DRAWN)),
            plot_ids,
        )
        # Each drawing shows data: marks drawn from its rows, not only axes and a title.
        # (SVG: elements inside vega's data marks; canvas: distinct colours of the pixels.)
        ink = page.evaluate(
            """ids => ids.map(id => {
                const root = document.getElementById(id);
                const svg = root.querySelector('svg.marks');
                if (svg) {
                    return svg.querySelectorAll(
                        'g.role-mark:not(.role-axis) path, g.role-mark rect, g.role-mark text'
                    ).length;
                }
                const c = root.querySelector('canvas.marks');
                if (!c) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const seen = new Set();
                for (let i = 0; i < d.length; i += 28) {
                    seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                }
                return seen.size;
            })""",
            plot_ids,
        )
        images = page.evaluate(
            "() => [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        shot = Path(os.environ.get("REVIEW_SCREENSHOT") or tmp_path / "review.png")
        page.screenshot(path=str(shot))
    assert leaving == [] and errors == []
    assert drawn == [], f"not drawn within 30 s: {drawn}"
    assert all(count > 0 for count in ink), dict(zip(plot_ids, ink, strict=True))
    figures = len(list((ROOT / "reports/figures").rglob("*.png")))
    assert len(images) == 2 * figures  # each figure at both revisions
    assert all(width > 0 for _, width in images), [src for src, w in images if w == 0]


def test_review_writes_the_page_of_both_revisions_and_prints_its_path(
    two_revisions, monkeypatch, capsys
):
    monkeypatch.chdir(two_revisions)
    review.main(["HEAD~1", "--out", "page"])
    printed = capsys.readouterr().out
    assert printed == f"{(two_revisions / 'page' / 'index.html').resolve()}\n"
    html = (two_revisions / "page/index.html").read_text(encoding="utf-8")
    assert '"rev": "HEAD~1"' in html and '"rev": "workspace"' in html
    assert "Review: plots of dvc.yaml" in html  # the project's template, not DVC's own
    assert not re.search(r"<script[^>]*\bsrc=", html)


def test_a_failed_plots_diff_gives_dvcs_last_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a git repository
    with pytest.raises(
        review.UserError,
        match=r"^`dvc plots diff HEAD --out \S+/page` failed: ERROR: Only supported for Git "
        r"repositories\. If you're seeing",
    ):
        review.main(["HEAD", "--out", str(tmp_path / "page")])


def test_template_mode_writes_the_template_and_a_missing_one_is_named(
    tmp_path, monkeypatch, capsys
):
    target = tmp_path / "new" / "review" / "template.html"  # folders made as needed
    monkeypatch.setattr(review, "TEMPLATE", target)
    with pytest.raises(
        review.UserError,
        match=rf"^{re.escape(str(target))}: missing — run `python -m stages.review --template`$",
    ):
        review.main(["HEAD", "--out", str(tmp_path / "page")])
    review.main(["--template"])
    review.main(["--template"])  # again, over the first: same file
    assert target.read_text(encoding="utf-8") == (ROOT / "review/template.html").read_text(
        encoding="utf-8"
    )
    size = round(target.stat().st_size / 1e3)
    assert capsys.readouterr().out == f"review: {target} ({size} KB)\n" * 2


@pytest.mark.parametrize("clash", ["{plot_divs}", "</script"])
def test_a_bundle_dvc_or_the_browser_would_cut_is_refused(monkeypatch, clash):
    import vl_convert

    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda vl_version: f"a{clash}b")
    with pytest.raises(
        review.UserError,
        match=rf"^vl-convert's bundle contains \['{re.escape(clash)}'\]: it cannot be inlined",
    ):
        review.template_text()


def test_without_arguments_the_page_compares_with_head_in_the_work_folder(
    two_revisions, monkeypatch, capsys
):
    monkeypatch.chdir(two_revisions)
    review.main([])
    page = (two_revisions / ".work" / "review" / "index.html").resolve()
    assert capsys.readouterr().out == f"{page}\n"
    html = page.read_text(encoding="utf-8")
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html


def test_help_names_the_revision_the_folder_and_the_template():
    text = help_text(review.main)
    assert "The review page: every plot of `dvc.yaml`, the workspace beside a revision" in text
    assert "rev revision to compare with" in text
    assert "--out OUT folder of the page" in text
    assert "--template rewrite template.html" in text

"""The committed reports of the default run: `dvc plots show` renders every plot of dvc.yaml."""

from __future__ import annotations

import yaml

from stages.shared.core.paths import WHERE
from tests.conftest import ROOT, dvc


def plot_titles() -> list[str]:
    """The title (or the file, for images) of every top-level plot in dvc.yaml."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    titles = []
    for entry in plots:
        if isinstance(entry, str):  # a folder of images, named in paths.yaml
            folder = ROOT / WHERE[entry.removeprefix("${paths.").removesuffix("}")]
            titles += [str(p.relative_to(ROOT)) for p in sorted(folder.rglob("*.png"))]
        else:
            ((name, props),) = entry.items()
            titles.append(props.get("title", name))
    return titles


def test_dvc_plots_show_renders_each_plot_of_the_repository(tmp_path):
    titles = plot_titles()
    assert len(titles) >= 15  # training curves, confusion, ROC, PR and the figures
    dvc("plots", "show", "-o", str(tmp_path), cwd=ROOT)
    html = (tmp_path / "index.html").read_text()
    missing = [title for title in titles if title not in html]
    assert not missing, missing

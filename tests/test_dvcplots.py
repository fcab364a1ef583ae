"""The plots of dvc.yaml as DVC fills them, drawn by vl-convert: what a reader of the figure sees.

The drawings are read back from vega's scenegraph (the positioned marks and labels of the
rendered chart), so a test sees a cell's count where it is drawn, not the spec that asked for it.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import vl_convert
from PIL import Image

from stages.shared.core.cli import UserError
from stages.shared.review import dvcplots


def drawn_texts(spec: dict) -> list[tuple[str, str, float, float]]:
    """(role, text, x, y) of every text item vega draws for `spec`, in chart coordinates."""
    found = []

    def walk(node, dx, dy):
        if isinstance(node, list):
            for child in node:
                walk(child, dx, dy)
            return
        if not isinstance(node, dict):
            return
        if "marktype" in node:
            for item in node.get("items", []):
                x, y = dx + item.get("x", 0), dy + item.get("y", 0)
                if node["marktype"] == "text":
                    found.append((node.get("role"), str(item.get("text")), x, y))
                elif node["marktype"] == "group":
                    walk(item.get("items", []), x, y)
            return
        for value in node.values():
            walk(value, dx, dy)

    walk(vl_convert.vegalite_to_scenegraph(spec, vl_version=dvcplots.VEGA_LITE), 0.0, 0.0)
    return found


def test_confusion_matrix_writes_each_count_in_its_actual_predicted_cell(plots_project):
    # Unequal supports, classes not in alphabetical order of appearance, a zero cell.
    pairs = {("owl", "owl"): 4, ("cat", "cat"): 5, ("cat", "dog"): 2, ("dog", "dog"): 3}
    pairs[("owl", "cat")] = 1
    rows = [(a, p) for (a, p), n in pairs.items() for _ in range(n)]
    path = plots_project / "reports/eval/classifier/predictions.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=["actual", "predicted"]).sample(frac=1, random_state=3).to_csv(
        path, index=False
    )
    spec = dvcplots.specs(["Classifier confusion matrix"])["Classifier confusion matrix"]
    texts = drawn_texts(spec)
    labels = [t for t in texts if t[0] == "axis-label"]
    y_labels = {t[1]: t[3] for t in labels if t[2] < 0}  # left of the plot: actual class
    x_labels = {t[1]: t[2] for t in labels if t[2] >= 0}  # below the plot: predicted class
    assert set(y_labels) == set(x_labels) == {"cat", "dog", "owl"}
    cells = {}
    for role, text, x, y in texts:
        if role == "mark":
            actual = min(y_labels, key=lambda name: abs(y_labels[name] - y))
            predicted = min(x_labels, key=lambda name: abs(x_labels[name] - x))
            cells[(actual, predicted)] = int(text)
    expected = pd.crosstab(pd.Series([a for a, _ in rows]), pd.Series([p for _, p in rows]))
    expected = expected.reindex(index=["cat", "dog", "owl"], columns=["cat", "dog", "owl"])
    assert cells == {
        (a, p): int(expected.fillna(0).loc[a, p]) for a in expected.index for p in expected.columns
    }
    assert cells[("dog", "cat")] == 0 and cells[("owl", "cat")] == 1


@pytest.mark.parametrize(
    ("plot", "file", "frame"),
    [
        (
            "Classifier ROC",
            "reports/eval/classifier/roc_average.csv",
            pd.DataFrame({"fpr": [0, 0.1, 0.2], "micro": [0.8, 0.9, 0.95], "macro": [0.7, 0.9, 1]}),
        ),
        (
            "Detector precision-recall",
            "reports/eval/detector/pr_curve.csv",
            pd.DataFrame({"threshold": [0.9, 0.5], "precision": [1.0, 0.8], "recall": [0.4, 0.6]}),
        ),
    ],
)
def test_curve_axes_span_zero_to_one_whatever_the_data(plots_project, plot, file, frame):
    path = plots_project / file
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    texts = drawn_texts(dvcplots.specs([plot])[plot])
    labels = [t for t in texts if t[0] == "axis-label"]
    x_axis = [float(t[1]) for t in labels if t[2] >= 0 and t[3] > 0]
    y_axis = [float(t[1]) for t in labels if t[2] < 0]
    # The data spans 0.4–1 at most; a "zero: false" scale would start the axes there.
    assert min(x_axis) == 0.0 and max(x_axis) == 1.0
    assert min(y_axis) == 0.0 and max(y_axis) == 1.0


def test_training_curves_draw_every_epoch_of_train_and_val(plots_project):
    base = plots_project / "reports/train/classifier/plots/metrics"
    for phase, losses in (("train", [0.9, 0.5, 0.3]), ("eval", [1.1, 0.8, 0.7])):
        (base / phase).mkdir(parents=True)
        pd.DataFrame({"step": [0, 1, 2], "loss": losses}).to_csv(
            base / phase / "loss.tsv", sep="\t", index=False
        )
    spec = dvcplots.specs(["Classifier loss"])["Classifier loss"]
    drawn = {(row["filename"], float(row["loss"])) for row in spec["data"]["values"]}
    assert drawn == {
        ("train/loss.tsv", 0.9),
        ("train/loss.tsv", 0.5),
        ("train/loss.tsv", 0.3),
        ("eval/loss.tsv", 1.1),
        ("eval/loss.tsv", 0.8),
        ("eval/loss.tsv", 0.7),
    }
    legend = {t[1] for t in drawn_texts(spec) if t[0] == "legend-label"}
    assert {"train/loss.tsv", "eval/loss.tsv"} <= legend


def test_a_plot_without_its_data_names_the_plot_and_the_fix(plots_project):
    with pytest.raises(UserError, match=r"'Detector precision-recall'.*run `dvc repro`"):
        dvcplots.specs(["Detector precision-recall"])


def test_a_broken_dvc_yaml_is_reported_in_one_line(plots_project):
    (plots_project / "params.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match=r"^dvc.yaml plots: .*Could not find 'data'"):
        dvcplots.specs(["Classifier loss"])


def test_an_unknown_plot_id_is_named(plots_project):
    with pytest.raises(UserError, match=r"no plot 'Classifier lost'"):
        dvcplots.specs(["Classifier lost"])


def square_spec(width: int, height: int, colour: str, mark_size: int = 100, **extra) -> dict:
    """A Vega-Lite view of width × height px holding one opaque square mark."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": width,
        "height": height,
        "data": {"values": [{"x": 0}]},
        "mark": {"type": "square", "size": mark_size, "color": colour, "opacity": 1},
        "encoding": {"x": {"field": "x", "type": "quantitative", "axis": None}},
        **extra,
    }


def test_figures_are_laid_out_row_by_row(tmp_path):
    def square(side, colour):
        return square_spec(side, side, colour, side * side * 4, config={"view": {"stroke": None}})

    specs = [square(40, "red"), square(80, "blue"), square(60, "green")]
    singles = []
    for i, spec in enumerate(specs):
        dvcplots.to_png([spec], tmp_path / f"{i}.png", dpi=100)
        singles.append(Image.open(tmp_path / f"{i}.png").size)
    dvcplots.to_png(specs, tmp_path / "grid.png", dpi=100, columns=2)
    grid = Image.open(tmp_path / "grid.png").convert("RGB")
    first_row_height = max(singles[0][1], singles[1][1])
    assert grid.size == (singles[0][0] + singles[1][0], first_row_height + singles[2][1])
    pixels = np.asarray(grid).astype(int)
    # The third drawing starts a second row at the left; the second sits right of the first.
    assert pixels[first_row_height + singles[2][1] // 2, singles[2][0] // 2].tolist() == [0, 128, 0]
    blue = pixels[singles[1][1] // 2, singles[0][0] + singles[1][0] // 2]
    assert blue[2] > 200 and blue[0] < 50


def test_a_drawing_is_its_spec_size_plus_vegas_padding_at_100_dpi_and_scales_with_dpi(tmp_path):
    spec = square_spec(40, 30, "red")
    # Vega pads a view by 5 px on each side by default.
    dvcplots.to_png([spec], tmp_path / "a" / "b" / "100.png", dpi=100)  # makes its folders
    assert Image.open(tmp_path / "a" / "b" / "100.png").size == (50, 40)
    dvcplots.to_png([spec], tmp_path / "200.png", dpi=200)
    assert Image.open(tmp_path / "200.png").size == (100, 80)


# Drawings of 40×30, 60×50, 30×40 and 50×30 px (spec size + Vega's 5 px padding): where each
# lands, and the sheet's size, worked out by hand.
LAYOUTS = {
    1: ([(0, 0), (0, 30), (0, 80), (0, 120)], (60, 150)),
    3: ([(0, 0), (40, 0), (100, 0), (0, 50)], (130, 80)),
}


@pytest.mark.parametrize("columns", list(LAYOUTS))
def test_the_grid_is_the_drawings_pasted_row_by_row_on_white(tmp_path, columns):
    specs = [square_spec(30, 20, "red"), square_spec(50, 40, "blue"), square_spec(20, 30, "green")]
    specs.append(square_spec(40, 20, "black"))
    offsets, size = LAYOUTS[columns]
    expected = Image.new("RGB", size, "white")
    for spec, offset in zip(specs, offsets, strict=True):  # each drawn by vl-convert itself
        drawing = vl_convert.vegalite_to_png(spec, vl_version=dvcplots.VEGA_LITE, scale=1.0)
        expected.paste(Image.open(io.BytesIO(drawing)).convert("RGB"), offset)
    dvcplots.to_png(specs, tmp_path / "grid.png", dpi=100, columns=columns)
    grid = Image.open(tmp_path / "grid.png").convert("RGB")
    assert grid.size == size
    assert np.array_equal(np.asarray(grid), np.asarray(expected))


def test_two_columns_unless_asked_otherwise(tmp_path):
    specs = [square_spec(30, 20, "red"), square_spec(50, 40, "blue"), square_spec(20, 30, "green")]
    dvcplots.to_png(specs, tmp_path / "default.png", dpi=100)
    dvcplots.to_png(specs, tmp_path / "two.png", dpi=100, columns=2)
    dvcplots.to_png(specs, tmp_path / "three.png", dpi=100, columns=3)
    default = np.asarray(Image.open(tmp_path / "default.png"))
    assert np.array_equal(default, np.asarray(Image.open(tmp_path / "two.png")))
    assert default.shape != np.asarray(Image.open(tmp_path / "three.png")).shape


def test_text_is_drawn_in_the_bundled_font_by_the_pinned_vega_lite(tmp_path):
    """The same glyphs on every machine: the bundled font, not whatever the system offers."""
    spec = square_spec(120, 20, "red", title="Accuracy 0.99 (val)")
    dvcplots.to_png([spec], tmp_path / "titled.png", dpi=100)
    drawn = np.asarray(Image.open(tmp_path / "titled.png").convert("RGB"))

    def vl(**options) -> np.ndarray:
        png = vl_convert.vegalite_to_png(spec, scale=1.0, **options)
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    pinned = vl(vl_version=dvcplots.VEGA_LITE, config={"font": dvcplots.FONT})
    assert drawn.shape == pinned.shape and np.array_equal(drawn, pinned)
    other = vl(vl_version=dvcplots.VEGA_LITE, config={"font": "monospace"})
    assert other.shape != drawn.shape or not np.array_equal(other, drawn)

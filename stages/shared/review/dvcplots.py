"""The plots `dvc.yaml` defines, filled by DVC and drawn to PNG: one definition per plot.

`dvc plots show` / `dvc plots diff` draw these definitions in the review page; the `plot` stage
draws the very same vega-lite specs (DVC's own filling of the `plots:` section and the
templates in `.dvc/plots/`) to the PNG figures of `summary.md` and the model cards, with
vl-convert, so a figure cannot drift from its interactive twin. The review page's JavaScript is
vl-convert's bundle of the same Vega-Lite version (`review/template.html`).
"""

from __future__ import annotations

from pathlib import Path

from stages.shared.core.cli import UserError

VEGA_LITE = "5.21"  # the Vega-Lite that draws the PNGs and runs in the review page
FONT = "Liberation Sans"  # bundled with vl-convert: the same glyphs on every machine


def specs(names: list[str], root: Path | str = ".") -> dict[str, dict]:
    """The vega-lite spec of each plot id in `names`, filled by DVC with the workspace data."""
    from dvc.exceptions import DvcException
    from dvc.render.match import match_defs_renderers
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            data = repo.plots.show(targets=list(names))
            for part in ("definitions", "sources"):
                error = data.get("workspace", {}).get(part, {}).get("error")
                if error is not None:
                    raise UserError(f"dvc.yaml plots: {error}")
            found = match_defs_renderers(
                data=data, out=None, templates_dir=repo.plots.templates_dir
            )
    except DvcException as error:
        raise UserError(f"dvc.yaml plots: {error}") from None
    filled = {}
    for item in found:
        renderer = item.renderer
        if renderer.name not in names:  # DVC also matches ids that start with a target
            continue
        for errors in (*item.source_errors.values(), *item.definition_errors.values()):
            problems = errors.values() if isinstance(errors, dict) else [errors]
            for problem in problems:
                raise UserError(
                    f"plot {renderer.name!r} in dvc.yaml: {problem} — run `dvc repro` to produce"
                    " its data"
                )
        if renderer.TYPE == "vega":
            filled[renderer.name] = renderer.get_filled_template()
    missing = [name for name in names if name not in filled]
    if missing:
        raise UserError(
            f"dvc.yaml: no plot {', '.join(map(repr, missing))} with data in the workspace —"
            " define it under `plots:` or run `dvc repro` to produce its data"
        )
    return filled


def to_png(figure_specs: list[dict], path: Path, dpi: int, columns: int = 2) -> None:
    """Draw each spec as DVC filled it (vega's 1 px = 1/100 inch, as matplotlib at dpi 100) and
    lay the drawings out in a grid of `columns`, row by row, in one PNG at `path`."""
    import io

    import vl_convert
    from PIL import Image

    drawings = [
        Image.open(
            io.BytesIO(
                vl_convert.vegalite_to_png(
                    spec, vl_version=VEGA_LITE, scale=dpi / 100.0, config={"font": FONT}
                )
            )
        ).convert("RGB")
        for spec in figure_specs
    ]
    columns = max(1, min(columns, len(drawings)))
    rows = [drawings[i : i + columns] for i in range(0, len(drawings), columns)]
    width = max(sum(d.width for d in row) for row in rows)
    sheet = Image.new("RGB", (width, sum(max(d.height for d in row) for row in rows)), "white")
    top = 0
    for row in rows:
        left = 0
        for drawing in row:
            sheet.paste(drawing, (left, top))
            left += drawing.width
        top += max(d.height for d in row)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG", optimize=True)

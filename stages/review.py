"""The review page: every plot of `dvc.yaml`, the workspace beside a revision, offline.

    python -m stages.review [REV]       # `make review REV=main`; REV defaults to HEAD
    python -m stages.review --template  # rewrite review/template.html (after a vl-convert bump)

The page is `dvc plots diff REV`, written with the HTML template `.dvc/config` names
(`plots.html_template`): `review/template.html`, which carries Vega, Vega-Lite and Vega-Embed
inline (vl-convert's bundle of the Vega-Lite version that also draws the PNG figures), so the
page needs no network. `dvc plots show` and `dvc plots diff` use the same template directly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from stages.shared.core.cli import UserError, run_stage
from stages.shared.review.dvcplots import VEGA_LITE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "review" / "template.html"
OUT_DIR = Path(".work") / "review"
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}", "{scripts}")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{refresh_tag}
<title>Review: plots of dvc.yaml</title>
<!-- Vega, Vega-Lite %(vega_lite)s and Vega-Embed, bundled by vl-convert-python %(vl_convert)s
     (BSD-3-Clause; see review/LICENSES.md). Inline so the page renders with no network.
     Written by `python -m stages.review --template`; do not edit by hand. -->
<script>
%(bundle)s
</script>
<style>
body { font-family: "Liberation Sans", Arial, sans-serif; margin: 1em; }
table { border-spacing: 15px; }
img { max-width: 100%%; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def template_text() -> str:
    """The page template, its JavaScript from the installed vl-convert."""
    from importlib.metadata import version

    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    clashes = [text for text in (*PLACEHOLDERS, "</script") if text in bundle]
    if clashes:  # DVC fills the placeholders by plain replacement; the HTML parser ends at </script
        raise UserError(f"vl-convert's bundle contains {clashes}: it cannot be inlined as is")
    return PAGE % {
        "bundle": bundle,
        "vega_lite": VEGA_LITE,
        "vl_convert": version("vl-convert-python"),
    }


def write_page(rev: str, out: Path) -> Path:
    """`dvc plots diff rev` into `out`; the path of its index.html."""
    if not TEMPLATE.is_file():
        raise UserError(f"{TEMPLATE}: missing — run `python -m stages.review --template`")
    command = ["dvc", "plots", "diff", rev, "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"`{' '.join(command)}` failed: {reason}")
    return out.resolve() / "index.html"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", default="HEAD", help="revision to compare with")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the page")
    parser.add_argument("--template", action="store_true", help=f"rewrite {TEMPLATE.name}")
    args = parser.parse_args(argv)
    if args.template:
        TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
        TEMPLATE.write_text(template_text(), encoding="utf-8")
        print(f"review: {TEMPLATE} ({TEMPLATE.stat().st_size / 1e3:.0f} KB)")
        return
    print(write_page(args.rev, args.out))


if __name__ == "__main__":
    run_stage(main)

"""Stage `summary`: reports/summary.md, the page a reviewer reads, from each model's section.

In:  reports/summary/<model>.json (written by `plot@<model>`: its section and warnings).
Out: reports/summary.md (every warning first, then one section per model).
"""

from __future__ import annotations

import argparse
import json

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.paths import MODELS, REPORTS_DIR, section_file
from stages.shared.data.manifest import atomic_write_text
from stages.shared.review.summary import summary_page


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    sections, warnings = [], []
    for name in MODELS:
        try:
            part = json.loads(section_file(name).read_text())
        except FileNotFoundError:
            raise UserError(
                f"{section_file(name)}: not found — run `dvc repro plot@{name}`"
            ) from None
        sections.append(part["section"])
        warnings += part["warnings"]
    page = REPORTS_DIR / "summary.md"
    atomic_write_text(page, summary_page(sections, warnings))
    print(f"summary: {page}, {len(sections)} sections, {len(warnings)} warnings on top")


if __name__ == "__main__":
    run_stage(main)

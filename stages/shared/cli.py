"""Entry-point plumbing every stage shares: logging setup and user-error reporting."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class UserError(Exception):
    """A mistake in the user's data or params: reported as one line, never a traceback."""


def setup_logging(level: int = logging.INFO) -> None:
    """Configure one plain, timestamped log format for all stages."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )


def run_stage(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Run a stage's `main`, turning a `UserError` into one line on stderr and exit code 2."""
    setup_logging()
    try:
        main(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)

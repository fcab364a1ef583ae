"""Entry-point plumbing every stage shares: logging setup and user-error reporting."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable

# Write failures that are the machine's state, not a bug: reported as one line with the fix.
STORAGE_ERRORS = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some disk space (quota exceeded)",
    errno.EROFS: "the file system is read-only: run from a writable checkout",
    errno.EACCES: "check the folder's permissions",
    errno.EPERM: "check the folder's permissions",
}


class UserError(Exception):
    """A mistake in the user's data or params: reported as one line, never a traceback."""


def setup_logging(level: int = logging.INFO) -> None:
    """Configure one plain, timestamped log format for all stages."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )


def storage_message(err: OSError) -> str | None:
    """One line for a disk-full / read-only / permission failure, or None for other errors."""
    fix = STORAGE_ERRORS.get(err.errno)
    if fix is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}cannot write ({err.strerror}) — {fix}, then re-run `dvc repro`"


def run_stage(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Run a stage's `main`, turning a `UserError` (or a full or read-only disk) into one
    line on stderr and exit code 2."""
    setup_logging()
    try:
        main(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        message = storage_message(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

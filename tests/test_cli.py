"""cli.py: what a user sees when a stage stops: one line on stderr, exit code 2."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys

import pytest

from stages.shared.core.cli import UserError, run_stage


def stop_with(error: Exception):
    def main(argv):
        raise error

    return main


def test_a_user_error_is_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_stage(stop_with(UserError("params.yaml: split.fractions: must sum to 1")), [])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "error: params.yaml: split.fractions: must sum to 1\n"


@pytest.mark.parametrize(
    ("code", "filename", "line"),
    [
        (
            errno.ENOSPC,
            "models/x.keras",
            "error: models/x.keras: cannot write (No space left on device) — free some disk "
            "space, then re-run `dvc repro`\n",
        ),
        (
            errno.EDQUOT,
            None,
            "error: cannot write (Disk quota exceeded) — free some disk space (quota exceeded),"
            " then re-run `dvc repro`\n",
        ),
        (
            errno.EROFS,
            "data",
            "error: data: cannot write (Read-only file system) — the file system is read-only:"
            " run from a writable checkout, then re-run `dvc repro`\n",
        ),
        (
            errno.EACCES,
            "reports",
            "error: reports: cannot write (Permission denied) — check the folder's permissions,"
            " then re-run `dvc repro`\n",
        ),
        (
            errno.EPERM,
            "reports",
            "error: reports: cannot write (Operation not permitted) — check the folder's "
            "permissions, then re-run `dvc repro`\n",
        ),
    ],
)
def test_a_full_or_read_only_disk_is_one_line_with_the_fix(capsys, code, filename, line):
    error = OSError(code, os.strerror(code), filename)
    with pytest.raises(SystemExit) as stopped:
        run_stage(stop_with(error), [])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == line


def test_any_other_os_error_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run_stage(stop_with(FileNotFoundError(errno.ENOENT, "No such file", "nowhere")), [])


def test_the_arguments_are_the_command_lines_and_logs_are_timestamped(monkeypatch, capsys):
    seen = []

    def main(argv):
        seen.append(argv)
        logging.getLogger("stages.example").info("hello")
        logging.getLogger("stages.example").debug("not shown at INFO")

    monkeypatch.setattr(sys, "argv", ["stages.example", "classifier", "--fast"])
    run_stage(main)
    run_stage(main, ["detector"])
    assert seen == [["classifier", "--fast"], ["detector"]]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} stages\.example INFO hello", x)
        for x in lines
    ), lines

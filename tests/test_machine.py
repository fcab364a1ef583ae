"""stages/shared/core/machine.py: the name of the machine a speed was measured on."""

from __future__ import annotations

import os

from stages.shared.core import machine


def test_the_machine_is_named_by_the_first_processors_model_and_the_core_count(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Chip A\n\nprocessor\t: 1\nmodel name\t: B\n")
    assert machine.cpu_info(info) == {"processor": "0", "model name": "Chip A"}
    assert machine.cpu_info(tmp_path / "absent") == {}
    assert machine.device().endswith(f", {os.cpu_count()} cores")  # no GPU on the test machine

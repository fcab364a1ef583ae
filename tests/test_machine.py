"""stages/shared/core/machine.py: the name of the machine a speed was measured on."""

from __future__ import annotations

import os

import pytest

from stages.shared.core import machine


def test_the_machine_is_named_by_the_first_processors_model_and_the_core_count(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Chip A: rev 2\n\nprocessor\t: 1\nmodel name\t: B\n"
    )
    assert machine.cpu_info(info) == {"processor": "0", "model name": "Chip A: rev 2"}
    assert machine.cpu_info(tmp_path / "absent") == {}
    if os.path.exists("/proc/cpuinfo"):  # Linux: read by default
        assert machine.cpu_info() == machine.cpu_info("/proc/cpuinfo") != {}
    assert machine.device().endswith(f", {os.cpu_count()} cores")  # no GPU on the test machine


def test_gpus_are_named_by_the_first_ones_name_and_their_count(gpus):
    gpus.update({"gpu0": {"device_name": "NVIDIA A100"}, "gpu1": {"device_name": "NVIDIA T4"}})
    assert machine.device() == "NVIDIA A100 × 2"
    gpus.clear()
    gpus["gpu0"] = {"compute_capability": (8, 0)}  # no name given
    assert machine.device() == "GPU × 1"


@pytest.mark.parametrize(
    ("info", "processor", "expected"),
    [
        ({"model name": "Chip A"}, "proc", "Chip A"),
        ({}, "proc", "proc"),  # no /proc/cpuinfo: what the platform says
        ({}, "", "arm64"),
    ],
)
def test_without_gpus_the_cpu_model_names_the_machine(gpus, monkeypatch, info, processor, expected):
    monkeypatch.setattr(machine, "cpu_info", lambda: info)
    monkeypatch.setattr(machine.platform, "processor", lambda: processor)
    monkeypatch.setattr(machine.platform, "machine", lambda: "arm64")
    assert machine.device() == f"{expected}, {os.cpu_count()} cores"

"""The machine a speed was measured on, named in every report that holds one: its CPU (model,
cores) or the GPUs TensorFlow sees. Speeds differ between machines; the name says which."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_info(path: Path | str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (the others repeat them); {} elsewhere."""
    info = Path(path)
    first: dict[str, str] = {}
    if info.exists():
        for line in info.read_text().splitlines():
            key, colon, value = line.partition(":")
            if colon:  # blank lines part the processors
                first.setdefault(key.strip(), value.strip())
    return first


def device() -> str:
    """'<GPU name> × n' when TensorFlow sees GPUs, else '<CPU model>, <n> cores'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{details.get('device_name', 'GPU')} × {len(gpus)}"
    cpu = cpu_info().get("model name") or platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores"

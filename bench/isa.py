"""Which settings stand in for another CPU: does each one change a training trajectory here?

`make test-isa` runs the tests that train once per setting below. A setting earns its place
only if it moves the weights of a short seeded training run on this machine, as another CPU
would: this module trains a tiny classifier and a tiny detector (2 epochs, random data, op
determinism on) in a fresh process per setting and compares the weights' md5 with the run
under default settings. `python -m bench.isa` writes the table to bench/ISA.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Environment variables read when TensorFlow and oneDNN start: each is a stand-in for a CPU
# (or a build) other than this one.
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "isa_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},  # an AVX2 machine (most laptops)
    "isa_avx512_core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},  # AVX-512 without VNNI/BF16/AMX
    "onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"},  # TensorFlow's Eigen kernels (other builds)
    "one_thread": {
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    },
}


def train_tiny() -> dict[str, str]:
    """md5 of the weights of a tiny classifier and detector after 2 seeded epochs."""
    import hashlib

    import numpy as np

    from stages.shared.core.seeding import seed_everything
    from stages.shared.models.classifiers import build_classifier
    from stages.shared.models.detectors import FaceTracker

    def digest(model) -> str:
        md5 = hashlib.md5()
        for weight in model.get_weights():
            md5.update(np.ascontiguousarray(weight).tobytes())
        return md5.hexdigest()

    seed_everything(5, deterministic_ops=True)
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 255, (48, 32, 32, 3)).astype("float32")
    classifier = build_classifier("plain_cnn", size=32, num_classes=3, dropout=0.0, aug=[])
    classifier.compile(optimizer="adam", loss="categorical_crossentropy")
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, 48)]
    classifier.fit(images, labels, epochs=2, batch_size=8, verbose=0)
    seed_everything(5, deterministic_ops=True)
    detector = FaceTracker("plain_cnn", 32, head_width=8)
    detector.compile(optimizer="adam")
    present = (rng.uniform(size=(48, 1)) < 0.7).astype("float32")
    corners = np.sort(rng.uniform(size=(48, 2, 2)), axis=1).reshape(48, 4)[:, [0, 2, 1, 3]]
    boxes = (corners * present).astype("float32")
    detector.fit(images, (present, boxes), epochs=2, batch_size=8, verbose=0)
    return {"classifier": digest(classifier), "detector": digest(detector)}


def measure(setting: str) -> dict:
    """Train in a fresh process under `setting`: {model: md5, "seconds": wall time}."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
           **SETTINGS[setting]}  # fmt: skip
    code = "import json; from bench.isa import train_tiny; print(json.dumps(train_tiny()))"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, cwd=ROOT)  # fmt: skip
    return {**json.loads(done.stdout.strip().splitlines()[-1]),
            "seconds": time.perf_counter() - started}  # fmt: skip


def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    # The default twice: the second run must not move, or the comparison means nothing.
    results = {"default": measure("default"), "default, again": measure("default")}
    results.update({name: measure(name) for name in SETTINGS if name != "default"})
    base = results["default"]
    lines = [
        "# Settings that stand in for another CPU",
        "",
        f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores; written by "
        "`python -m bench.isa` (part of `make test-isa`). Weights of a tiny classifier and "
        "detector after 2 seeded epochs with op determinism, each setting in a fresh process; "
        '"moves" = the weights differ from the default run\'s.',
        "",
        "| setting | environment | classifier moves | detector moves | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        env = " ".join(f"`{k}={v}`" for k, v in SETTINGS.get(name, {}).items()) or "-"
        moves = ["-" if name == "default" else ("yes" if result[m] != base[m] else "no")
                 for m in ("classifier", "detector")]  # fmt: skip
        lines.append(f"| {name} | {env} | {moves[0]} | {moves[1]} | {result['seconds']:.1f} |")
    text = "\n".join(lines) + "\n"
    (ROOT / "bench/ISA.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""What the lock protects, held by a test: one seeded training step of each model, from a fixed
image through the committed augmentation to the weights, hashed.

Every committed model hangs on these bits. A dependency that moves them (a new OpenCV, albucore
or simsimd rounding a pixel otherwise, a TensorFlow kernel summing in another order, a Keras
initializer) fails this test on the day the lock is changed, instead of a `dvc.lock`
comparison weeks later. The bits are a fact of a kind of machine as much as of the libraries
(bench/ISA.md: the CPU's instruction set, oneDNN and the thread count move them), so
`tests/step_digests.json` keeps one digest per machine kind; `make test-isa` runs this module
under each setting that stands in for another CPU, and each has its row. Record a kind (after
an upgrade judged on purpose, docs/upgrading.md, or on a new machine):

    UPDATE_STEP_DIGESTS=1 .venv/bin/python -m pytest tests/test_step_digest.py

On a machine kind with no row the test is skipped with that command in its reason; CI's kind
has its row, so CI always checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform

import numpy as np
import pandas as pd
import pytest
import yaml

from stages.shared.core.config import load_params
from stages.shared.core.machine import cpu_info
from stages.shared.core.seeding import seed_everything
from stages.shared.data.augmentation import augment, build_pipeline
from stages.train_classifier import Classifier
from stages.train_detector import Detector
from tests.conftest import ROOT

DIGESTS = ROOT / "tests" / "step_digests.json"
# The environment variables that move a training step here (bench/ISA.md's settings).
SETTINGS = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")  # fmt: skip
# The CPU features oneDNN picks its kernels by, newest first.
ISAS = ("amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2", "avx")


def machine_kind() -> str:
    """What decides the bits of a float computation here: architecture, CPU vendor and newest
    instruction set, the core count, and the settings that override them."""
    cpu = cpu_info()
    isa = next((name for name in ISAS if name in cpu.get("flags", "").split()), "baseline")
    settings = [f"{name}={os.environ[name]}" for name in SETTINGS if name in os.environ]
    vendor = cpu.get("vendor_id", "unknown vendor")
    return " ".join([platform.machine(), vendor, isa, f"{os.cpu_count()} cpus", *settings])


def fixed_image() -> np.ndarray:
    """A 120×160 photo stand-in: noise with a flat block off the diagonal."""
    rng = np.random.default_rng(11)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    image[30:90, 40:110] = (200, 120, 40)
    return image


def augmented(task: str, size: int, box, count: int):
    """`count` copies of the fixed image through the committed params' transforms of `task`."""
    spec = yaml.safe_load((ROOT / "params.yaml").read_text())["augment"][task]
    pipeline = build_pipeline(spec["transforms"], size, box is not None,
                              spec.get("min_visibility", 0.5), task)  # fmt: skip
    copies = [augment(pipeline, fixed_image(), box, seed) for seed in range(count)]
    images = np.stack([image for image, _ in copies]).astype("float32")
    return images, [kept for _, kept in copies]


def weights_digest(model) -> str:
    """sha256 over every weight's bytes, in the model's order."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def one_step(task, images, targets, seed: int) -> str:
    """Build and compile as the stage does (committed params), fit one batch, hash."""
    seed_everything(seed, deterministic_ops=True)
    model = task.build(images.shape[1])
    task.compile(model, task.cfg.learning_rate, jit_compile=False)
    model.fit(images, targets, batch_size=len(images), epochs=1, shuffle=False, verbose=0)
    return weights_digest(model)


def classifier_step() -> str:
    images, _ = augmented("classification", 32, None, 12)
    labels = ["cat", "dog", "owl", "cat", "cat", "dog", "owl", "cat", "dog", "cat", "owl", "cat"]
    frame = pd.DataFrame({"label": labels, "split": "train"})
    task = Classifier(load_params(Classifier.params, ROOT / "params.yaml"), frame)
    return one_step(task, images, task.targets(frame), seed=2026)


def detector_step() -> str:
    images, boxes = augmented("detection", 64, (0.25, 0.3, 0.65, 0.8), 8)
    rows = [(0.0, 0.0, 0.0, 0.0, 0.0) if kept is None else (1.0, *kept) for kept in boxes]
    frame = pd.DataFrame(rows, columns=["present", "x1", "y1", "x2", "y2"]).assign(split="train")
    task = Detector(load_params(Detector.params, ROOT / "params.yaml"), frame)
    return one_step(task, images, task.targets(frame), seed=2026)


def test_one_training_step_of_each_model_gives_the_recorded_weights():
    kind = machine_kind()
    digests = {"classifier": classifier_step(), "detector": detector_step()}
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    if os.environ.get("UPDATE_STEP_DIGESTS"):
        recorded[kind] = digests
        DIGESTS.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    if kind not in recorded:
        pytest.skip(
            f"no training-step digest for this machine kind ({kind}); record it with "
            "UPDATE_STEP_DIGESTS=1 .venv/bin/python -m pytest tests/test_step_digest.py"
        )
    assert digests == recorded[kind], (
        f"one seeded training step now gives other weights on {kind}: a library under "
        "requirements.lock computes other bits (or the committed params or model code "
        "changed). Upgrading on purpose: docs/upgrading.md"
    )


def test_the_step_is_repeatable_and_sees_its_data():
    # The digest means something only if it repeats, and if it depends on the pixels the
    # augmentation gives: a one-level change of one pixel moves it.
    images, _ = augmented("classification", 32, None, 12)
    frame = pd.DataFrame({"label": ["cat", "dog", "owl"] * 4, "split": "train"})
    task = Classifier(load_params(Classifier.params, ROOT / "params.yaml"), frame)
    before = one_step(task, images, task.targets(frame), seed=2026)
    assert one_step(task, images, task.targets(frame), seed=2026) == before
    images[3, 7, 5, 1] += 1.0
    assert one_step(task, images, task.targets(frame), seed=2026) != before

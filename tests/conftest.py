"""Shared fixtures: tiny datasets built on the fly, params files, and a project copy for DVC."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.project import (  # noqa: F401  (the tests import these from here)
    ROOT,
    TINY_PARAMS,
    copy_dvc_setup,
    dvc,
    git,
    new_pipeline_repo,
    run_cli,
    tiny_params,
)

os.environ.setdefault("TQDM_DISABLE", "1")


def write_image(path: Path, rng: np.random.Generator, size=(12, 10), mode="RGB", fmt=None) -> Path:
    """Write a random image (distinct content per call) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, format=fmt)
    return path


def labelme(points, width=40, height=30, shape_type="rectangle") -> dict:
    """A minimal labelme document with one shape."""
    return {
        "version": "5.2.1",
        "shapes": [{"label": "face", "points": points, "shape_type": shape_type}],
        "imageWidth": width,
        "imageHeight": height,
        "imageData": None,
    }


def make_classification(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """`<root>/<class>/img_NN.png` with `counts[class]` distinct random images each."""
    rng = np.random.default_rng(seed)
    for label, count in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_image(root / label / f"img_{i:02d}.png", rng)
    return root


def make_detection(root: Path, positives: int, negatives: int, beside: bool = False) -> Path:
    """Images 40×30 with labelme JSON (in labels/ or beside), plus negatives without JSON."""
    rng = np.random.default_rng(1)
    images = root if beside else root / "images"
    labels = root if beside else root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(positives + negatives):
        write_image(images / f"im_{i:02d}.jpg", rng, size=(40, 30))
        if i < positives:
            doc = labelme([[30, 20], [10, 5]])  # corners deliberately bottom-right first
            (labels / f"im_{i:02d}.json").write_text(json.dumps(doc))
    return root


def write_shards(folder: Path, images: dict, fmt: str = "raw", shard_size: int = 4) -> Path:
    """Shards of given uint8 images, {split: [(size, size, 3) arrays]}, each record's label
    its index (as augment writes them, without augmenting)."""
    from stages.shared.data import shards

    folder.mkdir(parents=True, exist_ok=True)
    files, counts = {}, {}
    for split, pixels in images.items():
        counts[split] = len(pixels)
        files[split] = shards.shard_names(split, len(pixels), shard_size)
        records = (
            shards.example(image, fmt, i, {"source": f"{split}/{i}.png", "label": str(i)})
            for i, image in enumerate(pixels)
        )
        shards.write_split(folder, files[split], records, len(pixels), shard_size)
    size = next(iter(images.values()))[0].shape[0]
    spec = {"image_size": size, "format": fmt, "shard_size": shard_size}
    shards.write_spec(folder, {**spec, "records": counts, "files": files})
    return folder


def shard_split(root: Path, task: str, size: int) -> None:
    """Run augment on a split manifest a test wrote (no copies, images at `size` px): the
    shards evaluate reads."""
    from stages import augment

    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["base"]["image_size"][task] = size
    params["augment"][task]["copies"] = 0
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    augment.main([task])


OWN_DATA_GROUPS = {"classification": "none", "detection": "none"}


def write_params(directory: Path, **sections) -> Path:
    """The project's params.yaml with sections (dicts, merged one level deep) overridden.

    A test that points `data` at its own files has none of the sample's source names, so,
    as a user with such data would, it sets `split.group_by` to none unless it says otherwise.
    """
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if "data" in sections and "group_by" not in sections.get("split", {}):
        params["split"]["group_by"] = dict(OWN_DATA_GROUPS)
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def gpus(monkeypatch):
    """TensorFlow made to see the GPUs a test lists, each with the details it gives."""
    import tensorflow as tf

    seen = {}
    real = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda kind=None: list(seen) if kind == "GPU" else real(kind),
    )
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda gpu: seen[gpu])
    return seen


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty project directory as the current directory, with the default params."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    return tmp_path


def help_text(main) -> str:
    """What `main(["--help"])` prints, whitespace collapsed; it must exit 0."""
    import contextlib
    import io

    out = io.StringIO()
    with pytest.raises(SystemExit) as stopped, contextlib.redirect_stdout(out):
        main(["--help"])
    assert stopped.value.code == 0
    return " ".join(out.getvalue().split())


def usage(main) -> str:
    """`help_text` after the program's name (which depends on how Python was started)."""
    return help_text(main).split(" ", 2)[2]


def refuses(main, argv: list[str], capsys) -> str:
    """The error a command line is refused with (exit 2, argparse's usage error)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def refuses_choice(main, bad: str, choices: tuple[str, ...], capsys) -> None:
    """The command line refuses `bad` as its positional choice, naming every valid one."""
    refused = refuses(main, [bad], capsys)
    assert f"invalid choice: '{bad}' (choose from " in refused
    assert all(choice in refused for choice in choices)


def run_paths(task: str, name: str = "run") -> dict:
    """The paths a training stage's `train` writes, for a run called `name` (cwd-relative)."""
    return {
        "manifest": f"data/augmented/{task}/manifest.csv",
        "model": f"models/{name}.keras",
        "live_dir": f"reports/train/{name}",
        "throughput_dir": f"reports/throughput/{name}",
        "batch": f"models/{name}_batch.npz",
        "tensorboard": f"reports/tensorboard/{name}",
    }


@pytest.fixture
def plots_project(workdir) -> Path:
    """`workdir` as a git + DVC repository with the project's dvc.yaml plots and templates."""
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    copy_dvc_setup(workdir)
    for name in ("dvc.yaml", "paths.yaml"):
        shutil.copy(ROOT / name, workdir / name)
    return workdir


@pytest.fixture
def dvc_project(tmp_path) -> Path:
    """A fresh git + DVC repository holding the pipeline code and tiny params, committed."""
    return new_pipeline_repo(tmp_path / "project")


# What a tiny project's first `dvc repro` depends on, beside the files it copies: the settings
# that move a training trajectory on this machine (`make test-isa`'s) and the CPU itself.
TRAJECTORY_ENV = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
                  "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")  # fmt: skip


# The files and folders a tiny project is built from (`new_pipeline_repo`, `tiny_params`).
KEPT_FILES = ("dvc.yaml", "paths.yaml", ".gitignore", "params.yaml", "requirements.lock",
              ".dvc/config", "bench/project.py")  # fmt: skip
KEPT_FOLDERS = ("stages", "pretrained", ".dvc/plots", "review")


def reproduced_key(root: Path = ROOT, env=os.environ) -> str:
    """The hash of everything a tiny project's first `dvc repro` depends on: the files
    `new_pipeline_repo` copies (code, dvc.yaml, params, pretrained weights, the DVC setup), the
    tiny params and the code that writes them, the locked packages, the Python version, the
    trajectory settings of the environment and this CPU (its model name and flags)."""
    digest = hashlib.sha256()
    files = [root / name for name in KEPT_FILES]
    for folder in KEPT_FOLDERS:
        files += sorted(p for p in (root / folder).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)  # fmt: skip
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:(.*)$", cpu, re.MULTILINE)
    flags = re.search(r"^flags\s*:(.*)$", cpu, re.MULTILINE)
    for text in (
        json.dumps(tiny_params(), sort_keys=True),
        sys.version,
        *(f"{name}={env.get(name, '')}" for name in TRAJECTORY_ENV),
        model.group(1) if model else "",
        flags.group(1) if flags else "",
    ):
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def reproduced(request, tmp_path_factory) -> dict:
    """One tiny project through a whole `dvc repro`: {"project": its folder, "stdout": what that
    first repro printed}. A full run costs ~1.5 minutes here (~2.5 beside another job), so it is
    built once and kept in pytest's cache under the hash of what built it (`reproduced_key`):
    the next run (`make test-docs` after `make test`, a test run again) copies it instead.

    The parallel workers share it: the first to need it builds it under a lock, the others
    wait for it and read it (tests only copy it). Without pytest's cache (`-p no:cacheprovider`)
    it is built in the run's common temporary folder.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's folder; the run's is its parent
        shared = shared.parent
    cache = getattr(request.config, "cache", None)
    home = cache.mkdir("reproduced") if cache is not None else shared
    key = reproduced_key()
    with open(home / "reproduced.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = home / key
        if not (kept / "stdout.txt").exists():
            for old in home.iterdir():  # projects of older code: one is kept
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            building = home / f"{key}.building"
            first = dvc("repro", cwd=new_pipeline_repo(building / "project"))
            (building / "stdout.txt").write_text(first.stdout)
            building.rename(kept)
    return {"project": kept / "project", "stdout": (kept / "stdout.txt").read_text()}


@pytest.fixture
def reproduced_project(reproduced, tmp_path) -> Path:
    """A private copy of the reproduced project: code committed, the run's outputs, dvc.lock
    and DVC cache in place but not committed, as right after a first `dvc repro`."""
    copy = tmp_path / "project"
    shutil.copytree(reproduced["project"], copy, symlinks=True)
    return copy


def write_eval_report(folder: Path, model: str, scores: dict) -> None:
    """A test report as `evaluate` writes it: headline metrics in metrics.json, the rest in
    detail.json."""
    from stages.shared.evaluation.metrics import split_report

    headline, detail = split_report(model, scores)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(headline))
    (folder / "detail.json").write_text(json.dumps(detail))


def read_eval_report(folder: Path) -> dict:
    """A model's whole test report: detail.json with the headline of metrics.json."""
    return {**json.loads((folder / "detail.json").read_text()),
            **json.loads((folder / "metrics.json").read_text())}  # fmt: skip


# --- validation scores set by the test, not by the training trajectory ---


def scripted_validation(layer, bias):
    """A Keras callback: while epoch e is validated, `layer(model)` answers a constant set by
    hand (kernel 0, bias `bias(model, e)`); the trained weights are put back before the epoch ends,
    so the checkpoint, the history and the resume state all see the weights the epoch trained.

    The validation score of each epoch is then a function of the validation data and the
    script alone (a constant box, a constant class distribution), the same on every CPU: a test
    that needs "the best epoch is not the last" or "phase 2 beats phase 1" builds it here
    instead of hoping that a training run on this machine happens to produce it. Epochs not in
    the script validate as trained.
    """

    import keras

    class Scripted(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch, self.trained = 0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_test_begin(self, logs=None):
            value = bias(self.model, self.epoch)
            if value is None:
                return
            target = layer(self.model)
            self.trained = target.get_weights()
            target.kernel.assign(np.zeros(target.kernel.shape, "float32"))
            target.bias.assign(np.asarray(value, "float32"))

        def on_test_end(self, logs=None):
            if self.trained is not None:
                layer(self.model).set_weights(self.trained)
                self.trained = None

    return Scripted()


def box_output(model):
    """The last layer with weights of a detector's box head (Dense(4) or the centre Conv2D)."""
    return [layer for layer in model.box_head.layers if layer.weights][-1]


def constant_box_bias(model, full: bool) -> list[float]:
    """The box-output bias that makes every box the whole frame (`full`, IoU with any true box
    = its area, > 0) or a point at the centre (IoU 0), whichever head the detector has."""
    big = 30.0  # sigmoid(±30) is 1 or 0 in float32
    if model.config["box_head"] == "center":  # (centre logit, dx, dy, width, height) per cell
        return [0.0, 0.0, 0.0, big, big] if full else [0.0, 0.0, 0.0, -big, -big]
    return [-big, -big, big, big] if full else [0.0, 0.0, 0.0, 0.0]  # sigmoid corners


# --- tiny saved models, as the training stages save them ---


def save_tiny_classifier(path: Path, classes=("blue", "red"), size: int = 16) -> Path:
    """A simple_cnn trained one epoch on random pixels, saved with its metadata JSON."""
    from stages.shared.models.classifiers import build_classifier
    from stages.shared.models.store import save_model

    rng = np.random.default_rng(0)
    model = build_classifier("simple_cnn", size=size, num_classes=len(classes), dropout=0.0, aug=[])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = rng.uniform(0, 255, (8, size, size, 3)).astype("float32")
    y = np.eye(len(classes), dtype="float32")[rng.integers(0, len(classes), 8)]
    model.fit(x, y, epochs=1, verbose=0)
    meta = {"task": "classification", "classes": list(classes), "image_size": size}
    save_model(model, path, meta)
    return path


def save_tiny_detector(path: Path, size: int = 32) -> Path:
    """A small untrained FaceTracker (soft-argmax heads), saved with its metadata JSON."""
    import keras

    from stages.shared.models.detectors import FaceTracker
    from stages.shared.models.store import save_model

    keras.utils.set_random_seed(0)  # its weights must not depend on the tests run before it
    model = FaceTracker("plain_cnn", size, head_width=8)
    model(np.zeros((1, size, size, 3), "float32"))
    save_model(model, path, {"task": "detection", "image_size": size})
    return path


# Time limits that mean a hang, not a busy machine. On an AMD EPYC (2 cores) the slowest fast
# test took 56 s and the slowest slow test 534 s, both inside a full `make test` while other
# jobs shared the cores (the slow one: 142 s alone); the limits leave 5x and 3x that, times how
# much slower this machine runs when the session starts.
FAST_LIMIT, SLOW_LIMIT = 300, 1800
REFERENCE_LOOP = 0.10  # seconds: the best of `slowdown`'s loops there, alone


def slowdown() -> float:
    """How much slower than the reference this machine runs at the start of the session: a
    fixed Python loop (best of 3) against its time there, and the load average per core
    (other jobs on the cores); at least 1. TEST_TIMEOUT_FACTOR overrides it."""
    if os.environ.get("TEST_TIMEOUT_FACTOR"):
        return float(os.environ["TEST_TIMEOUT_FACTOR"])
    times = []
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i * i
        times.append(time.perf_counter() - started)
    busy = os.getloadavg()[0] / (os.cpu_count() or 1)
    return max(1.0, min(times) / REFERENCE_LOOP, busy)


# A module trains a model when its code fits one, or runs a stage, the pipeline or `compare`
# that does: `make test-isa` runs these under settings that stand in for other CPUs.
TRAINS = re.compile(
    r"\.fit\(|train_(classifier|detector)\.(train|main)\(|\"repro\"|\"exp\", \"run\"|"
    r"stages\.compare|reproduced|save_tiny_classifier|run_overfit"
)


def trains(module) -> bool:
    """Whether a test module's source trains a model (see TRAINS)."""
    return bool(TRAINS.search(Path(module.__file__).read_text()))


# ISAs of oneDNN (ONEDNN_MAX_CPU_ISA) that compute in float16, and the CPU flags TensorFlow reads
# to hand a float16 op to oneDNN rather than to its own kernels.
FLOAT16_ISAS = {
    "AVX2_VNNI_2",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
}
FLOAT16_FLAGS = {"avx512_fp16", "amx_fp16", "avx_ne_convert"}


def float16_hidden(env=os.environ, cpuinfo: str | None = None) -> str | None:
    """Why this process cannot stand in for its CPU kind in float16, or None when it can.

    TensorFlow hands a float16 convolution to oneDNN when the real CPU has float16 units
    (AVX512-FP16, AMX-FP16); ONEDNN_MAX_CPU_ISA caps oneDNN below them without telling
    TensorFlow, and oneDNN then has no kernel ("could not create a primitive descriptor"). A real
    CPU of the capped kind has no such flags, so TensorFlow runs float16 in its own kernels, which
    `TF_ENABLE_ONEDNN_OPTS=0` (the other setting of `make test-isa`) covers."""
    cap = env.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if not cap or cap == "ALL" or cap in FLOAT16_ISAS or env.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return None
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(cpuinfo.split()) & FLOAT16_FLAGS
    if not flags:
        return None
    return (
        f"ONEDNN_MAX_CPU_ISA={cap} hides this CPU's float16 units ({', '.join(sorted(flags))}) "
        "from oneDNN but not from TensorFlow; float16 without them runs under "
        "TF_ENABLE_ONEDNN_OPTS=0"
    )


def pytest_collection_modifyitems(config, items):
    """Mark the tests of modules that train (`-m trains`); skip the float16 ones where the
    emulated CPU cannot run them as a real one would (float16_hidden); give each test a time
    limit that scales with how busy this machine is (the order: `Schedule`, below)."""
    factor = slowdown()
    hidden = float16_hidden()
    for item in items:
        if trains(item.module):
            item.add_marker(pytest.mark.trains)
        if hidden and item.get_closest_marker("float16"):
            item.add_marker(pytest.mark.skip(reason=hidden))
        if item.get_closest_marker("timeout") is None:
            limit = SLOW_LIMIT if item.get_closest_marker("slow") else FAST_LIMIT
            item.add_marker(pytest.mark.timeout(round(limit * factor)))


# --- the longest tests first, on both workers ---

DURATIONS = Path(__file__).with_name("durations.json")  # bench/quickstart.py writes it


def shared_scope(item) -> str:
    """What `item` must run beside: its module when it uses a module- (or class-, package-)
    scoped fixture, which pytest sets up again each time the order leaves and comes back;
    else itself."""
    for defs in item._fixtureinfo.name2fixturedefs.values():
        if defs and defs[-1].scope in ("module", "class", "package"):
            return item.nodeid.split("::")[0]
    return item.nodeid


def longest_first(items: list, seconds: dict[str, float], unit_of=shared_scope) -> list:
    """The order that makes two `--dist worksteal` workers end together: xdist hands the first
    half of the list (by count) to one worker and the rest to the other, and a worker that runs
    out steals from the end of the other's queue. So the tests are dealt longest first, each to
    the half with less to run so far, then the shortest tests move across until the halves hold
    as many as xdist counts; each half runs longest first, and what is stolen is short. The tests
    that share a module-scoped fixture go together, as one. A test without a recorded time
    counts as its module's mean (a new module's: the median of all).

    The tests on the shared reproduced project go first in the first half and last in the
    second: the first worker builds it (when no earlier run kept it) while the other runs the
    rest, so no worker sits waiting for it."""
    known = sorted(seconds.values())
    median = known[len(known) // 2] if known else 1.0
    by_module: dict[str, list[float]] = {}
    for nodeid, time_taken in seconds.items():
        by_module.setdefault(nodeid.split("::")[0], []).append(time_taken)

    def expected(item) -> float:
        if item.nodeid in seconds:
            return seconds[item.nodeid]
        module = by_module.get(item.nodeid.split("::")[0])
        return sum(module) / len(module) if module else median

    units: dict[str, list] = {}
    for item in items:
        units.setdefault(unit_of(item), []).append(item)
    cost = {key: sum(expected(item) for item in unit) for key, unit in units.items()}
    halves: tuple[list, list] = ([], [])
    loads = [0.0, 0.0]
    for key in sorted(units, key=lambda k: -cost[k]):
        half = 0 if loads[0] <= loads[1] else 1
        halves[half].append(key)
        loads[half] += cost[key]
    size = [sum(len(units[key]) for key in half) for half in halves]
    while size[0] != len(items) // 2:  # the shortest single tests cross to even the counts
        giver = 0 if size[0] > len(items) // 2 else 1
        singles = [key for key in halves[giver] if len(units[key]) == 1]
        if not singles:
            break
        moved = min(singles, key=lambda k: cost[k])
        halves[giver].remove(moved)
        halves[1 - giver].append(moved)
        size[giver], size[1 - giver] = size[giver] - 1, size[1 - giver] + 1

    def shared(key) -> bool:
        return any("reproduced" in item.fixturenames for item in units[key])

    first = sorted(halves[0], key=lambda k: (not shared(k), -cost[k]))
    second = sorted(halves[1], key=lambda k: (shared(k), -cost[k]))
    return [item for key in first + second for item in units[key]]


class Schedule:
    """Orders the tests after every other plugin has selected them (`-m`, `-k`): the docs'
    walk-through (`make test-docs`: each test a project of its own, driven through the CLIs)
    longest first; any other selection in collection order, with the tests on the shared
    reproduced project first (one worker builds it while the other runs the rest).

    Not yet the in-process tests: dealt by time, a test of test_registry.py that calls DVC and
    GTO in-process after another module's test in the same worker ends on "I/O operation on
    closed file" (colorama keeps a stream of an earlier test's capture); in collection order
    none does."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        if items and all(item.get_closest_marker("docs") for item in items):
            seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
            items[:] = longest_first(items, seconds)
        else:
            items.sort(key=lambda item: "reproduced" not in item.fixturenames)


def pytest_configure(config):
    config.pluginmanager.register(Schedule(), "longest-first")


# --- a browser with no way off the machine ---

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@contextlib.contextmanager
def offline_page(**options):
    """A headless Chromium page (`options` as Playwright's new_page takes them) in which every
    request that is not a local file is blocked: yields (page, errors, leaving), the console
    and page errors and the URLs that tried to leave. Without Chromium the test is skipped,
    except in CI (`CI` set), where it fails."""
    chromium = find_chromium()
    if chromium is None:
        message = "no Chromium found: `apt-get install chromium` (or set CHROMIUM=<path>)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    errors, leaving = [], []

    def only_local_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(**options)
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", only_local_files)
            yield page, errors, leaving
        finally:
            browser.close()

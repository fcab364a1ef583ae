"""Scale: the detection pipeline on the sample (1×) and on SCALE× the sample (default 50).

The SCALE× data is the sample's frames copied SCALE times, each copy with its own brightness
jitter and re-encoded JPEG (q90), labelme JSON beside: 24,000 frames at 50×. For each size, a
fresh git + DVC project with the pipeline's code and committed params (`data.detection` set
to that folder, grouped by face) and the real `dvc` CLI:

- `dvc repro split@detection`, then `dvc repro augment@detection`: seconds per frame;
- files in those stages' outputs, and disk used (workspace + `.dvc/cache`, DVC's default
  link type);
- `dvc status` and a no-op `dvc repro augment@detection` (best of three), beside a one-stage
  project whose only dependency is the same raw folder: what DVC must spend on the user's
  files anyway, reported apart from what the pipeline's outputs add;
- one training epoch of the default detector, `cache: none` (streamed from the shards), in
  its own process: seconds per image (the epoch alone, after a two-step warm-up) and the
  process's peak RSS.

Near-copies (bursts, video frames): the sample's digits, each copied SCALE times with a small
brightness change (89,400 images at 50×, most copies of an image sharing its perceptual hash),
`dvc repro split@classification`: seconds per image, and the near-duplicate pairs its report
counts (1,225 per digit at 50×, joined into groups without listing them).

Ratios are SCALE× over 1×, both measured in this one run.

    python -m bench.scale            # or: make bench (runs it with the others)
    SCALE=10 python -m bench.scale   # a quicker look
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import ROOT, project_params, row, run_measured, stage_command, timed, toy
from bench.project import dvc as run_dvc
from bench.project import git, new_pipeline_repo

PATTERN = r"_face(\d+)"  # the sample's face id: copies of a face stay in one split
TARGET_PER_IMAGE = 1.15
TARGET_RSS = 1.3
TARGET_NOOP_OVER_RAW = 1.0  # seconds


def synthesise(sample: Path, out: Path, copies: int, seed: int = 0) -> int:
    """`copies` jittered copies of every sample frame (and its labelme JSON) in `out`;
    how many frames were written."""
    from PIL import Image

    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    frames = sorted((sample / "images").iterdir())
    rng = np.random.default_rng(seed)
    for k in range(copies):
        for image in frames:
            stem = image.stem.replace("frame_", f"frame{k:03d}_")
            pixels = np.asarray(Image.open(image).convert("RGB")).astype(np.int16)
            pixels = np.clip(pixels + rng.integers(-12, 13), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(out / "images" / f"{stem}.jpg", quality=90)
            label = sample / "labels" / f"{image.stem}.json"
            if label.exists():
                doc = json.loads(label.read_text())
                doc["imagePath"] = f"../images/{stem}.jpg"
                (out / "labels" / f"{stem}.json").write_text(json.dumps(doc))
    return copies * len(frames)


def near_copies(sample: Path, out: Path, copies: int, seed: int = 0) -> int:
    """`copies` copies of every sample digit in `out` (class folders kept), each brightened
    or darkened by up to 3 grey levels; how many images were written."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = 0
    for image in sorted(sample.rglob("*.png")):
        folder = out / image.parent.relative_to(sample)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.asarray(Image.open(image).convert("RGB")).astype(np.int16)
        for k in range(copies):
            shifted = np.clip(pixels + rng.integers(-3, 4), 0, 255).astype(np.uint8)
            Image.fromarray(shifted).save(folder / f"{image.stem}_copy{k:03d}.png")
            written += 1
    return written


def measure_near_copies(scale: int, work: Path, sample: Path) -> dict:
    """split@classification on `scale` near-copies of every digit."""
    data = work / f"digits{scale}"
    images = near_copies(sample, data, scale)
    params = project_params()
    params["data"]["classification"] = str(data)
    project = new_pipeline_repo(work / f"digits-project{scale}", params)
    startup = min(run_measured(stage_command("split", "--help"), project)[0] for _ in range(2))
    seconds = dvc(project, "repro", "-q", "-s", "split@classification")
    alone = run_measured(stage_command("split", "classification"), project)[0]
    report = json.loads((project / "reports/data/classification.json").read_text())
    shutil.rmtree(data)
    shutil.rmtree(project)
    return {
        "scale": scale,
        "images": images,
        "split_s": seconds,  # dvc repro split@classification
        "marginal_s": alone - startup,  # the stage less its start-up (imports, no image)
        "pairs": report["groups"]["near_duplicates"]["pairs"],
        "listed": len(report["groups"]["near_duplicates"]["listed"]),
        "groups": report["groups"]["count"],
    }


def run_near_copies(scale: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = new_pipeline_repo(work / "sample-project", project_params())
        dvc(base, "repro", "-q", "sample@classification")
        sample = base / "data/sample/classification"
        small = measure_near_copies(1, work, sample)
        large = measure_near_copies(scale, work, sample)
    print(json.dumps({"1x": small, f"{scale}x": large}, indent=1))

    def per(result: dict, key: str) -> float:
        return result[key] / result["images"]

    ratio = per(large, "marginal_s") / per(small, "marginal_s")
    return [
        row(
            f"{scale}x near-copies: split seconds per image less start-up / 1x"
            f" ({per(small, 'marginal_s') * 1000:.2f} -> {per(large, 'marginal_s') * 1000:.2f} ms,"
            f" {large['images']} images)",
            round(ratio, 2),
            f"<= {TARGET_PER_IMAGE}",
            ratio <= TARGET_PER_IMAGE,
        ),
        row(
            f"{scale}x near-copies: dvc repro split@classification, ms per image, 1x -> {scale}x",
            f"{per(small, 'split_s') * 1000:.2f} -> {per(large, 'split_s') * 1000:.2f} ms",
        ),
        row(
            f"{scale}x near-copies: near-duplicate pairs counted (listed in the report), groups",
            f"{large['pairs']:,} ({large['listed']}), {large['groups']:,}",
        ),
    ]


def dvc(project: Path, *args: str) -> float:
    """Seconds of one `dvc` command in the project (it must succeed)."""
    return timed(lambda: run_dvc(*args, cwd=project))


def disk_bytes(*folders: Path) -> int:
    """Bytes of the files under folders (what `du --apparent-size` counts)."""
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def raw_only_project(folder: Path, data: Path) -> Path:
    """A git + DVC project with one stage that depends on the raw folder and nothing else."""
    folder.mkdir(parents=True)
    git("init", "-q", cwd=folder)
    dvc(folder, "init", "-q")
    (folder / "dvc.yaml").write_text(
        f"stages:\n  count:\n    cmd: ls {data}/images | wc -l > count.txt\n"
        f"    deps:\n      - {data}\n    outs:\n      - count.txt\n"
    )
    return folder


def epoch_probe(project: Path) -> dict:
    """Run one streamed training epoch of the default detector in `project`, in its own
    process: {seconds of the epoch alone, images, peak RSS in MiB}."""
    out = project / "epoch.json"
    command = [sys.executable, "-m", "bench.scale", "--epoch", str(project), str(out)]
    _, rss = run_measured(command, project)
    return {**json.loads(out.read_text()), "rss_mib": rss}


def one_epoch(project: Path, out: Path) -> None:
    """(In the probe's process.) One epoch of the stage's own data and model, `cache: none`."""
    os.chdir(project)
    from bench.common import stage_epoch

    *_, train_rows, epoch_s = stage_epoch("detector", cache="none")
    out.write_text(json.dumps({"epoch_s": epoch_s, "images": len(train_rows)}))


def measure(scale: int, work: Path, sample: Path) -> dict:
    """Every figure of one data size."""
    data = work / f"data{scale}"
    frames = synthesise(sample, data, scale)
    params = project_params()
    params["data"]["detection"] = str(data)
    params["split"]["group_pattern"]["detection"] = PATTERN
    project = new_pipeline_repo(work / f"project{scale}", params)
    result = {"scale": scale, "frames": frames}
    result["split_s"] = dvc(project, "repro", "-q", "-s", "split@detection")
    result["augment_s"] = dvc(project, "repro", "-q", "-s", "augment@detection")
    outputs = [project / "data/split/detection.csv", project / "data/augmented/detection"]
    result["output_files"] = sum(1 if p.is_file() else len(list(p.rglob("*"))) for p in outputs)
    result["records"] = sum(
        json.loads((outputs[1] / "shards.json").read_text())["records"].values()
    )
    result["disk_mib"] = disk_bytes(project / "data", project / ".dvc/cache") / 2**20
    result["status_s"] = min(dvc(project, "status") for _ in range(3))
    result["noop_s"] = min(dvc(project, "repro", "-q", "augment@detection") for _ in range(3))
    raw = raw_only_project(work / f"raw{scale}", data)
    dvc(raw, "repro", "-q")
    result["raw_noop_s"] = min(dvc(raw, "repro", "-q") for _ in range(3))
    result.update(epoch_probe(project))
    shutil.rmtree(data)  # the disk back before the next size
    shutil.rmtree(project)
    return result


def run() -> list[dict]:
    scale = int(os.environ.get("SCALE", toy("50", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sample = work / "sample"
        base = new_pipeline_repo(work / "sample-project", project_params())
        dvc(base, "repro", "-q", "sample@detection")
        shutil.copytree(base / "data/sample/detection", sample)
        small, large = measure(1, work, sample), measure(scale, work, sample)
    return rows(small, large) + run_near_copies(scale)


def rows(small: dict, large: dict) -> list[dict]:
    """The results table: each figure at both sizes, ratios against the targets."""
    scale = large["scale"]

    def per(result: dict, key: str, count: str = "frames") -> float:
        return result[key] / result[count]

    print(json.dumps({"1x": small, f"{scale}x": large}, indent=1))
    out = []
    for name, key, count in (
        ("split", "split_s", "frames"),
        ("augment", "augment_s", "frames"),
        ("one epoch (cache: none)", "epoch_s", "images"),
    ):
        ratio = per(large, key, count) / per(small, key, count)
        out.append(
            row(
                f"{scale}x data: {name} seconds per image / 1x"
                f" ({per(small, key, count) * 1000:.2f} -> {per(large, key, count) * 1000:.2f} ms)",
                round(ratio, 2),
                f"<= {TARGET_PER_IMAGE}",
                ratio <= TARGET_PER_IMAGE,
            )
        )
    rss = large["rss_mib"] / small["rss_mib"]
    out.append(
        row(
            f"{scale}x data: peak RSS of a streamed epoch / 1x"
            f" ({small['rss_mib']:.0f} -> {large['rss_mib']:.0f} MiB)",
            round(rss, 2),
            f"<= {TARGET_RSS}",
            rss <= TARGET_RSS,
        )
    )
    # shards: the files per image fall as the data grows (one file per image keeps them flat)
    grows = per(large, "output_files", "records") <= per(small, "output_files", "records")
    out.append(
        row(
            f"files in split + augment outputs, 1x -> {scale}x"
            f" ({small['records']} -> {large['records']} images)",
            f"{small['output_files']} -> {large['output_files']}",
            "fewer per image",
            grows,
        )
    )
    over = large["noop_s"] - large["raw_noop_s"]
    out.append(
        row(
            f"{scale}x data: no-op dvc repro, pipeline - one stage on the raw folder"
            f" ({large['noop_s']:.2f} - {large['raw_noop_s']:.2f} s)",
            round(over, 2),
            f"<= {TARGET_NOOP_OVER_RAW} s",
            over <= TARGET_NOOP_OVER_RAW,
        )
    )
    out.append(
        row(
            f"dvc status, 1x -> {scale}x, seconds",
            f"{small['status_s']:.2f} -> {large['status_s']:.2f}",
        )
    )
    out.append(
        row(
            f"disk used (workspace + DVC cache), 1x -> {scale}x, MiB",
            f"{small['disk_mib']:.0f} -> {large['disk_mib']:.0f}",
        )
    )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--epoch"]:
        sys.path.insert(0, str(ROOT))
        one_epoch(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["--near-copies"]:  # this part alone
        from bench.common import table

        print(table(run_near_copies(int(os.environ.get("SCALE", "50")))))
    else:
        from bench.common import table

        print(table(run()))

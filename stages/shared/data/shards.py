"""TFRecord shards: every image training and evaluation read, decoded and resized once.

`augment` writes them; `tfdata` reads them with TensorFlow's own ops (no Python per image).
A folder of shards holds, per split, `<split>-00000-of-00003.tfrecord` ... with at most
`shard_size` records each, and `shards.json` (image size, format, record counts, files).
A record is one `tf.train.Example`:

- image:  the model's input pixels, size × size × 3 uint8 RGB, `raw` (row-major bytes) or
          `png` (lossless, smaller, slower to decode); either way exactly the pixels
          `images.model_pixels` gives for a user's file, so a model sees in training and
          evaluation what `predict` shows it;
- index:  the record's position in its split = its row among that split's manifest rows;
- source: the user's file it was made from;
- label (classification) or present + box (detection, normalised x1 y1 x2 y2).

Few large files instead of one per image: DVC hashes, links and checks each file of an
output, so its time grows with their number (docs/performance.md).
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from stages.shared.core.cli import UserError

SPEC_FILE = "shards.json"
SUFFIX = ".tfrecord"


def shard_names(split: str, count: int, shard_size: int) -> list[str]:
    """File names of a split of `count` records, `shard_size` each (none for no records)."""
    total = math.ceil(count / shard_size)
    return [f"{split}-{i:05d}-of-{total:05d}{SUFFIX}" for i in range(total)]


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """uint8 (size, size, 3) pixels as record bytes (PNG at a fixed setting: the same bytes
    on every run)."""
    if fmt == "raw":
        return np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def example(pixels: np.ndarray, fmt: str, index: int, row: dict[str, Any]) -> bytes:
    """One serialised record (deterministic: map fields in sorted order)."""
    import tensorflow as tf

    def raw(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        "image": raw(encode(pixels, fmt)),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
        "source": raw(str(row["source"]).encode()),
    }
    if "label" in row:
        feature["label"] = raw(str(row["label"]).encode())
    else:
        feature["present"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[row["present"]]))
        box = [float(row[k]) for k in ("x1", "y1", "x2", "y2")]
        feature["box"] = tf.train.Feature(float_list=tf.train.FloatList(value=box))
    proto = tf.train.Example(features=tf.train.Features(feature=feature))
    return proto.SerializeToString(deterministic=True)


def write_split(
    folder: Path, names: list[str], records: Iterable[bytes], count: int, shard_size: int
) -> None:
    """Write `count` serialised records of a split, in order, into the shards `names`; a
    full or read-only disk is an OSError naming the shard (cli.run_stage says the fix)."""
    import tensorflow as tf

    written = 0
    stream = iter(records)
    for name in names:
        path = str(Path(folder) / name)
        try:
            with tf.io.TFRecordWriter(path) as writer:
                for _ in range(min(shard_size, count - written)):
                    writer.write(next(stream))
                    written += 1
        except tf.errors.OpError as err:
            raise storage_error(err, path) from None
    if written != count or next(stream, None) is not None:
        raise RuntimeError(f"{names}: expected {count} records")  # a bug, not a user mistake


# TensorFlow's file errors carry the OS's words, not its errno.
OS_WORDS = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


def storage_error(err: Exception, path: str) -> OSError:
    """A TensorFlow write error as the OSError the OS reported."""
    message = getattr(err, "message", str(err))
    code = next((c for words, c in OS_WORDS.items() if words in message), errno.EIO)
    return OSError(code, os.strerror(code), path)


def write_spec(folder: Path, spec: dict) -> None:
    """shards.json: what a reader needs besides the files."""
    from stages.shared.data.manifest import write_json

    write_json(Path(folder) / SPEC_FILE, spec)


def read_spec(folder: Path) -> dict:
    """shards.json of a shard folder, or one line saying which stage writes it."""
    path = Path(folder) / SPEC_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found — run `dvc repro` (augment writes it)") from None


def split_files(folder: Path, split: str) -> list[str]:
    """The shard files of one split, in order."""
    return [str(Path(folder) / name) for name in read_spec(folder)["files"][split]]


def parse(serialized, size: int, fmt: str):
    """A batch of serialised records → (uint8 images (n, size, size, 3), index (n,)); graph
    ops only, so tf.data runs it in parallel outside Python."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }
    fields = tf.io.parse_example(serialized, spec)
    if fmt == "raw":
        flat = tf.io.decode_raw(fields["image"], tf.uint8)
    else:
        flat = tf.map_fn(
            lambda data: tf.reshape(tf.io.decode_png(data, channels=3), [-1]),
            fields["image"],
            fn_output_signature=tf.TensorSpec([size * size * 3], tf.uint8),
        )
    return tf.reshape(flat, [-1, size, size, 3]), fields["index"]


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every record of one shard file as a dict (pixels as uint8 arrays): for looking, not
    for training."""
    import tensorflow as tf

    for data in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        proto = tf.train.Example.FromString(data)
        fields = proto.features.feature
        record: dict[str, Any] = {
            "index": fields["index"].int64_list.value[0],
            "source": fields["source"].bytes_list.value[0].decode(),
        }
        if "label" in fields:
            record["label"] = fields["label"].bytes_list.value[0].decode()
        else:
            record["present"] = fields["present"].int64_list.value[0]
            record["box"] = list(fields["box"].float_list.value)
        record["image"] = fields["image"].bytes_list.value[0]
        yield record


def pixels_of(record: dict[str, Any], size: int, fmt: str) -> np.ndarray:
    """A record's image as uint8 (size, size, 3)."""
    if fmt == "raw":
        return np.frombuffer(record["image"], np.uint8).reshape(size, size, 3)
    from PIL import Image

    return np.asarray(Image.open(BytesIO(record["image"])).convert("RGB"))


def dump(folder: Path, split: str, out: Path, count: int) -> int:
    """The first `count` records of a split as PNG files in `out` (detection: the box drawn
    in red), with records.csv listing each one's source and target; how many were written."""
    import pandas as pd
    from PIL import Image, ImageDraw

    spec = read_spec(folder)
    size, fmt = spec["image_size"], spec["format"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in split_files(folder, split):
        for record in read_records(path):
            if len(rows) >= count:
                break
            image = Image.fromarray(pixels_of(record, size, fmt))
            name = f"{split}-{record['index']:06d}.png"
            if record.get("present"):
                x1, y1, x2, y2 = (v * size for v in record["box"])
                ImageDraw.Draw(image).rectangle((x1, y1, x2 - 1, y2 - 1), outline=(255, 0, 0))
            image.save(out / name)
            target = {k: record[k] for k in ("label", "present") if k in record}
            if "box" in record:
                target.update(zip(("x1", "y1", "x2", "y2"), record["box"], strict=True))
            rows.append({"file": name, "source": record["source"], **target})
    pd.DataFrame(rows).to_csv(out / "records.csv", index=False, float_format="%.6f")
    return len(rows)

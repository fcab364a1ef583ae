"""`python -m stages.release classifier v1.0.0 [--stage prod]`: register this commit's model
as a version, and its exports with it (a tool, not a pipeline stage; `make release`).

    python -m stages.release classifier v1.0.0              # tags classifier@v1.0.0, ...
    python -m stages.release classifier v1.0.0 --stage prod # and assigns it to `prod`
    python -m stages.release classifier v1.0.0 --stage prod # (an existing version: assign only)
    python -m stages.release --meta                         # dvc.yaml's artifacts, refreshed
    python -m stages.release --changes main                 # Markdown for a pull request

A version is GTO's git tag on the commit (`classifier@v1.0.0`, and `classifier-savedmodel@`,
`classifier-tflite@` the same), a stage is another (`classifier#prod#1`): `gto show` lists
them, `dvc artifacts get . classifier --rev v1.0.0` (or `--stage prod`) fetches the bytes, and
`python -m stages.predict --model classifier@prod` runs them. Registering asks for a clean git
workspace and a pipeline `dvc status` calls up to date, so the tag names exactly the weights
the commit's dvc.lock and reports describe. First it refreshes the `artifacts:` section of
dvc.yaml (this file writes it: the models, their exports, and meta a consumer reads without
loading the model: task, input, classes, headline test metrics with their intervals, the
weights' md5), committing it when it changed. Tags stay local until you push them (`git push
origin --tags`) with the weights (`dvc push`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.paths import EVAL_DIR, MODELS, WHERE, model_file
from stages.shared.data.manifest import read_json
from stages.shared.evaluation.metrics import HEADLINES
from stages.shared.models.registry import (
    LOCK_FILE,
    VERSION,
    provenance_from_lock,
    registered,
)

DVC_FILE = Path("dvc.yaml")
MARKER = "# Models by name (`dvc artifacts get`, GTO versions)"
FORMS = {  # artifact suffix: (path under paths.yaml, what it is, labels)
    "": ("models", "{model}.keras", "Keras 3 archive; its metadata JSON beside it", ["keras"]),
    "-savedmodel": (
        "exports",
        "{model}",
        "SavedModel for TF Serving, metadata inside",
        ["savedmodel"],
    ),
    "-tflite": ("exports", "{model}.tflite", "TFLite, metadata inside", ["tflite"]),
}
DESCRIPTION = {
    "classifier": "Image classifier",
    "detector": "Single-object detector (presence and one box)",
}


def git(*args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise UserError(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def model_meta(model: str) -> dict:
    """What a consumer needs without loading the weights: from models/<model>.json and the
    test reports of this workspace."""
    meta = read_json(model_file(model).with_suffix(".json"))
    headline = read_json(EVAL_DIR / model / "metrics.json")
    ci95 = read_json(EVAL_DIR / model / "detail.json").get("ci95", {})
    size = meta["image_size"]
    found = {
        "task": meta["task"],
        "input": f"{size}x{size} RGB, float32 pixels in [0, 255]",
        "image_size": size,
        "architecture": meta.get("architecture") or meta.get("backbone"),
        "test_metrics": {
            key: {
                "value": headline[key],
                "ci95": [ci95[key]["low"], ci95[key]["high"]] if key in ci95 else None,
            }
            for key in HEADLINES[model]
            if key in headline
        },
        "model_md5": meta.get("model_md5"),
        "card": (WHERE["reports"] / f"model_card_{model}.md").as_posix(),
    }
    if meta["task"] == "classification":
        found["classes"] = list(meta["classes"])
    return found


def artifacts(models) -> dict:
    """The `artifacts:` of dvc.yaml, refreshed for `models`; the other models' entries kept
    as the last release wrote them (written afresh only when missing)."""
    current = (yaml.safe_load(DVC_FILE.read_text()) or {}).get("artifacts") or {}
    found = {}
    for model in MODELS:
        keys = [f"{model}{suffix}" for suffix in FORMS]
        if model not in models and all(key in current for key in keys):
            found.update({key: current[key] for key in keys})
            continue
        meta = model_meta(model)
        for key, (where, name, what, labels) in zip(keys, FORMS.values(), strict=True):
            found[key] = {
                "path": f"${{paths.{where}}}/{name.format(model=model)}",
                "type": "model",
                "desc": f"{DESCRIPTION[model]}: {what}",
                "labels": [MODELS[model], *labels],
                "meta": meta,
            }
    return found


class Dumper(yaml.SafeDumper):
    """YAML as a person writes it: no anchors, short lists of scalars on one line."""

    def ignore_aliases(self, data) -> bool:
        return True


Dumper.add_representer(
    list,
    lambda dumper, items: dumper.represent_sequence(
        "tag:yaml.org,2002:seq",
        items,
        flow_style=all(not isinstance(item, dict | list) for item in items),
    ),
)


def write_artifacts(models) -> bool:
    """Rewrite dvc.yaml's artifacts section (its last section); whether it changed."""
    text = DVC_FILE.read_text()
    head = text.split(MARKER)[0].rstrip() + "\n\n"
    if MARKER not in text and re.search(r"^artifacts:", text, re.MULTILINE):
        raise UserError(f"{DVC_FILE}: an artifacts section this tool did not write — remove it")
    block = yaml.dump(
        {"artifacts": artifacts(models)},
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    note = (
        f"{MARKER}: written by `python -m stages.release` from the\n"
        "# reports of the commit it registers. Edit stages/release.py, not this section.\n"
    )
    new = head + note + block
    if new == text:
        return False
    DVC_FILE.write_text(new)
    return True


def check_ready() -> None:
    """A clean git workspace and a pipeline DVC calls up to date, or one line."""
    if git("status", "--porcelain", "--untracked-files=no").strip():
        raise UserError("uncommitted changes — commit them (or `git stash`) before a release")
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], capture_output=True, text=True
    )
    if done.returncode != 0 or json.loads(done.stdout or "{}"):
        stale = ", ".join(json.loads(done.stdout or "{}")) or done.stderr.strip()
        raise UserError(
            f"the pipeline is not up to date ({stale}) — run `dvc repro`, commit, then release"
        )


def release(model: str, version: str, stage: str | None) -> None:
    from gto import api

    if not VERSION.match(version):
        raise UserError(f"{version}: not a version — use semantic versioning, e.g. v1.0.0")
    names = [f"{model}{suffix}" for suffix in FORMS]
    held = registered_in(model)
    if version in held.versions:
        if stage is None:
            raise UserError(f"{model}@{version} exists — {held}; pass --stage to assign it")
        for name in names:
            api.assign(".", name, stage, version=version, skip_registration=True)
        print(f"release: {model}@{version} assigned to {stage} (and its exports)")
        return
    check_ready()
    if write_artifacts([model]):
        git("add", DVC_FILE.as_posix())
        git("commit", "-q", "-m", f"{model} {version}: its metadata in dvc.yaml's artifacts")
    for name in names:
        api.register(".", name, "HEAD", version=version, message=f"{name} {version}")
        if stage:
            api.assign(".", name, stage, version=version, skip_registration=True)
    rev = git("rev-parse", "--short", "HEAD").strip()
    print(
        f"release: {model}@{version} is commit {rev}{f', stage {stage}' if stage else ''} —"
        " publish with `git push origin --tags` and `dvc push`"
    )


def registered_in(model: str):
    from scmrepo.git import Git

    return registered(Git("."), model)


def lock_at(rev: str) -> str | None:
    text = git("show", f"{rev}:{LOCK_FILE.as_posix()}", check=False)
    return text or None


def changes(base: str) -> str:
    """Markdown: for each model, whether this workspace's weights differ from `base`'s and
    which registered versions (and stages) hold either."""
    from scmrepo.git import Git

    scm = Git(".")
    here = LOCK_FILE.read_text() if LOCK_FILE.exists() else None
    locks = {base: lock_at(base)}  # each revision's dvc.lock read once, for every model

    def weights(text: str | None, model: str) -> str | None:
        return (provenance_from_lock(text, model) or {}).get("model_md5")

    rows = []
    for model in MODELS:
        new, old = weights(here, model), weights(locks[base], model)
        held = registered(scm, model)
        by_md5: dict[str, list[str]] = {}
        for version, commit in held.versions.items():
            if commit not in locks:
                locks[commit] = lock_at(commit)
            md5 = weights(locks[commit], model)
            stages = held.stages_of(version)
            by_md5.setdefault(md5, []).append(
                version + (f" ({', '.join(stages)})" if stages else "")
            )
        if new == old:
            verdict = "unchanged"
        elif not held.versions:
            verdict = "new weights; no version registered yet"
        else:
            replaced = ", ".join(by_md5.get(old, [])) or "no registered version"
            verdict = (
                f"new weights: {replaced} stays as it is; `make release MODEL={model}"
                " VERSION=...` after merging registers these"
            )
        rows.append(
            f"| {model} | `{(old or '-')[:10]}` | `{(new or '-')[:10]}` |"
            f" {', '.join(by_md5.get(new, [])) or '-'} | {verdict} |"
        )
    return (
        f"| model | weights on {base} | weights here | registered versions with these weights |"
        " change |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", choices=list(MODELS))
    parser.add_argument("version", nargs="?", help="semantic version, e.g. v1.0.0")
    parser.add_argument("--stage", help="assign this stage (e.g. prod) to the version")
    parser.add_argument("--meta", action="store_true", help="refresh dvc.yaml's artifacts only")
    parser.add_argument("--changes", metavar="REV", help="Markdown: registered versions vs REV")
    args = parser.parse_args(argv)
    if args.meta:
        changed = write_artifacts(list(MODELS))
        print(f"release: {DVC_FILE} artifacts {'refreshed' if changed else 'already current'}")
    elif args.changes:
        print(changes(args.changes))
    elif args.model and args.version:
        release(args.model, args.version, args.stage)
    else:
        parser.error("give MODEL VERSION, --meta or --changes REV")


if __name__ == "__main__":
    run_stage(main)

"""Models by name: `classifier@v1.0.0`, `classifier@prod`, `classifier@latest`, and the same
with another project in front, `<path or git URL>:classifier@prod`.

The names are the `artifacts:` of dvc.yaml; versions and stages are GTO's git tags
(`classifier@v1.0.0` registers a version, `classifier#prod#1` assigns a stage), written by
`make release`. A reference resolves through DVC's own code (what `dvc artifacts get` runs)
to a git revision; its bytes are fetched once into a cache keyed by repository, name and
revision, with that revision's metadata JSON and model card beside them, and checked against
the metadata as a model file is (store.read_metadata). `registry.json` in the same folder
says which version, stages and revision the copy is.

Provenance: what a model was trained from is the training stage's entry in `dvc.lock` (the
md5 of each data dependency and of its params). `provenance()` reads it, and only when the
entry's recorded output is the model's own bytes; the model card and the exports record it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stages.shared.core.cli import UserError
from stages.shared.data.images import file_md5

LOCK_FILE = Path("dvc.lock")
# `[repo:]name@version-or-stage`; a name is GTO's (lower case, digits, dashes)
REFERENCE = re.compile(
    r"^(?:(?P<repo>.+):)?(?P<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)@(?P<ref>[\w.+-]+)$"
)
VERSION = re.compile(r"^v\d+\.\d+\.\d+")
CACHE_ENV = "VISION_PIPELINE_CACHE"  # where fetched models go (default ~/.cache/vision-pipeline)


@dataclass(frozen=True)
class Reference:
    """A model by name: the repository (None: this project), the artifact, and a version or
    a stage (neither: the latest version)."""

    name: str
    version: str | None = None
    stage: str | None = None
    repo: str | None = None

    def __str__(self) -> str:
        where = f"{self.repo}:" if self.repo else ""
        return f"{where}{self.name}@{self.version or self.stage or 'latest'}"


def parse_reference(text: str) -> Reference | None:
    """The reference `text` names, or None when it is a path (an existing file or folder,
    or anything without `name@...`)."""
    if Path(text).exists():
        return None
    match = REFERENCE.match(text)
    if match is None:
        return None
    ref = match["ref"]
    version = ref if VERSION.match(ref) else None
    stage = None if version or ref == "latest" else ref
    return Reference(match["name"], version, stage, match["repo"])


@dataclass
class Registered:
    """What the registry holds for one name: versions (oldest first) with their commits, and
    each stage's version."""

    versions: dict[str, str] = field(default_factory=dict)  # version -> commit
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version

    def version_at(self, rev: str) -> str | None:
        """The newest version registered on commit `rev`."""
        found = [version for version, commit in self.versions.items() if commit == rev]
        return found[-1] if found else None

    def stages_of(self, version: str) -> list[str]:
        return sorted(stage for stage, held in self.stages.items() if held == version)

    def __str__(self) -> str:
        if not self.versions:
            return "no version registered yet"
        text = "versions: " + ", ".join(self.versions)
        if self.stages:
            text += "; stages: " + ", ".join(f"{s} → {v}" for s, v in sorted(self.stages.items()))
        return text


def registered(scm, name: str) -> Registered:
    """The versions and stages of `name` in the git repository `scm`, from GTO's tags."""
    from gto.tag import find, parse_name

    found = Registered()
    tags = [(tag, parse_name(tag.name)) for tag in find(name=name, scm=scm)]  # oldest first
    for tag, parsed in tags:
        if parsed.get("version") and not parsed.get("stage"):
            found.versions[parsed["version"]] = tag.target
    for tag, parsed in tags:  # after every version: a stage names its version by commit
        if parsed.get("stage"):
            version = found.version_at(tag.target)
            if "!" in tag.name:  # an unassignment
                found.stages.pop(parsed["stage"], None)
            elif version:
                found.stages[parsed["stage"]] = version
    return found


def declared(repo) -> list[str]:
    """The artifact names of a DVC repository's dvc.yaml files."""
    return sorted(name for names in repo.artifacts.read().values() for name in names)


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "vision-pipeline"
    )
    return Path(base) / "models"


@dataclass(frozen=True)
class Fetched:
    """A model fetched by name: the local copy and what it is."""

    path: Path
    name: str
    version: str
    stages: list[str]
    rev: str
    repo: str

    def describe(self) -> str:
        stages = f" ({', '.join(self.stages)})" if self.stages else ""
        return f"{self.name} {self.version}{stages}, git revision {self.rev[:10]}"


def fetch(ref: Reference) -> Fetched:
    """The bytes `ref` names, in the cache (fetched once per revision), checked against the
    metadata of their revision; one line naming what exists when the name, version or stage
    does not."""
    from dvc.exceptions import ArtifactNotFoundError, DvcException
    from dvc.repo import Repo

    url = ref.repo or os.getcwd()
    try:
        with Repo.open(url=url, subrepos=True, uninitialized=True) as repo:
            names = declared(repo)
            held = registered(repo.scm, ref.name)
            if ref.name not in names and not held.versions:
                raise UserError(
                    f"{ref}: no model named {ref.name!r} in {url} — its dvc.yaml declares"
                    f" {', '.join(names) or 'no artifacts'}"
                )
            if not held.versions:
                raise UserError(
                    f"{ref}: {ref.name} has no version registered yet — register one with"
                    f" `make release MODEL={ref.name} VERSION=v1.0.0`"
                )
            try:
                rev = repo.artifacts.get_rev(ref.name, version=ref.version, stage=ref.stage)
            except ArtifactNotFoundError:
                what = f"version {ref.version}" if ref.version else f"stage {ref.stage!r}"
                raise UserError(f"{ref}: no {what} of {ref.name} — {held}") from None
            version = ref.version or held.version_at(rev) or rev[:10]
            stages = held.stages_of(version)
            with repo.switch(rev):
                path = Path(repo.artifacts.get_path(ref.name))
                beside = {
                    kind: read_git_file(repo, other)
                    for kind, other in (
                        ("metadata", path.with_suffix(".json")),
                        ("card", Path("reports") / f"model_card_{model_of(ref.name)}.md"),
                        ("lock", LOCK_FILE),
                    )
                }
            folder = cache_root() / slug(url) / ref.name / rev
            target = folder / path.name
            if not cached(target, beside["metadata"]):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                repo.artifacts.download(ref.name, version=version, out=os.fspath(target))
    except DvcException as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        detail = " ".join(f"{err}{cause}".split())
        raise UserError(f"{ref}: {detail} — check that {url} is a git + DVC repository") from None
    fetched = Fetched(target, ref.name, version, stages, rev, url)
    record(fetched, beside)
    return fetched


def read_git_file(repo, path: Path) -> str | None:
    """A git-tracked file of the revision `repo` is switched to, or None."""
    fs = repo.fs
    full = fs.join(fs.root_marker, path.as_posix())
    return fs.read_text(full) if fs.exists(full) else None


def slug(url: str) -> str:
    """A folder name for a repository: readable tail, hash of the whole."""
    whole = os.path.abspath(url) if os.path.exists(url) else url
    tail = re.sub(r"[^A-Za-z0-9]+", "-", whole.rstrip("/").rsplit("/", 1)[-1])
    return f"{tail}-{hashlib.md5(whole.encode()).hexdigest()[:10]}"


def cached(target: Path, metadata: str | None) -> bool:
    """Whether `target` holds the bytes `metadata` describes (a `.keras` archive), or exists
    (an export, which carries its metadata inside)."""
    if not target.exists():
        return False
    if metadata is None or target.suffix != ".keras":
        return True
    return json.loads(metadata).get("model_md5") == file_md5(target)


def record(fetched: Fetched, beside: dict) -> None:
    """Write the revision's metadata JSON, its model card (with the registry's line) and
    `registry.json` beside the fetched copy."""
    folder = fetched.path.parent
    if beside["metadata"] is not None and fetched.path.suffix == ".keras":
        fetched.path.with_suffix(".json").write_text(beside["metadata"])
    entry = {
        "name": fetched.name,
        "version": fetched.version,
        "stages": fetched.stages,
        "rev": fetched.rev,
        "repo": fetched.repo,
        "trained_from": provenance_from_lock(beside["lock"], fetched.name),
    }
    (folder / "registry.json").write_text(json.dumps(entry, indent=2) + "\n")
    if beside["card"] is not None:
        line = f"\n## Registry\n\n{fetched.describe()}, from {fetched.repo}.\n"
        (folder / f"model_card_{model_of(fetched.name)}.md").write_text(beside["card"] + line)


def model_of(name: str) -> str:
    """The model an artifact name belongs to (`classifier-tflite` → `classifier`)."""
    return name.split("-", 1)[0]


def provenance_from_lock(text: str | None, name: str, model_md5: str | None = None) -> dict | None:
    """What the training of `name` read, from the text of a dvc.lock: the md5 of each
    dependency that is not code and of its params, and the md5 of the model it wrote. None
    when the lock has no entry, or (with `model_md5`) when its entry wrote other bytes."""
    if not text:
        return None
    model = model_of(name)
    entry = (yaml.safe_load(text) or {}).get("stages", {}).get(f"train-{model}")
    if not entry:
        return None
    wrote = {out["path"]: out.get("md5") for out in entry.get("outs", [])}
    keras = next((md5 for path, md5 in wrote.items() if path.endswith(f"{model}.keras")), None)
    if model_md5 is not None and keras != model_md5:
        return None
    params = entry.get("params", {})
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return {
        "data": {
            dep["path"]: dep.get("md5")
            for dep in entry.get("deps", [])
            if not dep["path"].endswith(".py")
        },
        "params_md5": hashlib.md5(canonical).hexdigest(),
        "model_md5": keras,
    }


def provenance(name: str, model_md5: str | None) -> dict | None:
    """What the model whose archive has `model_md5` was trained from, per this project's
    dvc.lock; None when the lock does not describe those bytes (a run outside `dvc repro`)."""
    if not LOCK_FILE.exists() or model_md5 is None:
        return None
    return provenance_from_lock(LOCK_FILE.read_text(), name, model_md5)

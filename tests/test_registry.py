"""Models by name: references, the registry's tags, provenance from dvc.lock, the pull-request
table, and (slow) a release, a second release, a stage, and fetching and serving each by name
through the real `dvc`, `gto` and stage CLIs."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from bench.project import ROOT, dvc, git, run_cli
from stages import release
from stages.shared.core.cli import UserError
from stages.shared.models import registry
from stages.shared.models.registry import Reference, parse_reference, provenance_from_lock
from stages.shared.review.summary import provenance_text
from tests.conftest import help_text, refuses


@pytest.mark.parametrize(
    "text, expected",
    [
        ("classifier@v1.0.0", Reference("classifier", version="v1.0.0")),
        ("classifier@prod", Reference("classifier", stage="prod")),
        ("detector@latest", Reference("detector")),
        ("../other:detector@v2.10.3", Reference("detector", "v2.10.3", None, "../other")),
        (
            "git@host.org:team/repo.git:classifier-tflite@staging",
            Reference("classifier-tflite", None, "staging", "git@host.org:team/repo.git"),
        ),
        ("models/classifier.keras", None),
        ("Classifier@prod", None),  # not a GTO name: a path that does not exist
    ],
)
def test_a_reference_names_repo_model_and_version_or_stage(text, expected):
    assert parse_reference(text) == expected


def test_an_existing_file_is_a_path_even_with_an_at_sign(workdir):
    Path("classifier@v1.0.0").write_text("a file")
    assert parse_reference("classifier@v1.0.0") is None


def lock(model_md5: str, data_md5: str = "d" * 32, lr: float = 0.001, code: str = "c" * 32) -> str:
    return yaml.safe_dump(
        {
            "schema": "2.0",
            "stages": {
                "train-classifier": {
                    "cmd": "python -m stages.train_classifier",
                    "deps": [
                        {"path": "data/augmented/classification", "md5": f"{data_md5}.dir"},
                        {"path": "stages/train_classifier.py", "md5": code},
                    ],
                    "params": {"params.yaml": {"train_classifier": {"learning_rate": lr}}},
                    "outs": [
                        {"path": "models/classifier.keras", "md5": model_md5},
                        {"path": "models/classifier.json", "md5": "j" * 32},
                    ],
                }
            },
        }
    )


def test_provenance_is_the_training_entry_of_dvc_lock_when_it_wrote_these_weights():
    found = provenance_from_lock(lock("a" * 32), "classifier", "a" * 32)
    assert found["data"] == {"data/augmented/classification": "d" * 32 + ".dir"}  # no code
    assert found["model_md5"] == "a" * 32
    canonical = json.dumps(
        {"params.yaml": {"train_classifier": {"learning_rate": 0.001}}},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert found["params_md5"] == hashlib.md5(canonical.encode()).hexdigest()
    # params move it, code does not; an export's name reads its model's entry
    other_lr = provenance_from_lock(lock("a" * 32, lr=0.01), "classifier", "a" * 32)
    assert other_lr["params_md5"] != found["params_md5"]
    assert provenance_from_lock(lock("a" * 32, code="e" * 32), "classifier-tflite") == found


def test_no_provenance_when_the_lock_describes_other_weights_or_none():
    assert provenance_from_lock(lock("a" * 32), "classifier", "b" * 32) is None
    assert provenance_from_lock(lock("a" * 32), "detector") is None
    assert provenance_from_lock(None, "classifier") is None
    assert "not recorded" in provenance_text("classifier", None)
    text = provenance_text("classifier", provenance_from_lock(lock("a" * 32), "classifier"))
    assert "`" + "d" * 32 + ".dir`" in text and "`" + "a" * 32 + "`" in text


def commit_lock(repo: Path, model_md5: str, message: str) -> str:
    (repo / "dvc.lock").write_text(lock(model_md5))
    git("add", "dvc.lock", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def gto(*args: str, cwd: Path):
    return run_cli(["gto", *args], cwd)


@pytest.fixture
def tagged(tmp_path, monkeypatch) -> dict:
    """A git repository with two dvc.locks (weights a…, then b…), v1.0.0 and v1.1.0
    registered on them and `prod` on v1.0.0, as GTO's tags."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    first = commit_lock(repo, "a" * 32, "first")
    gto("register", "classifier", first, "--version", "v1.0.0", cwd=repo)
    second = commit_lock(repo, "b" * 32, "second")
    gto("register", "classifier", second, "--version", "v1.1.0", cwd=repo)
    gto("assign", "classifier", "--version", "v1.0.0", "--stage", "prod", cwd=repo)
    monkeypatch.chdir(repo)
    return {"repo": repo, "first": first, "second": second}


def test_the_registry_reads_versions_and_stages_from_the_tags(tagged):
    from scmrepo.git import Git

    held = registry.registered(Git(str(tagged["repo"])), "classifier")
    assert held.versions == {"v1.0.0": tagged["first"], "v1.1.0": tagged["second"]}
    assert held.stages == {"prod": "v1.0.0"}
    assert held.version_at(tagged["second"]) == "v1.1.0"
    assert str(held) == "versions: v1.0.0, v1.1.0; stages: prod → v1.0.0"
    assert str(registry.registered(Git(str(tagged["repo"])), "detector")) == (
        "no version registered yet"
    )


def test_the_pull_request_table_says_which_registered_weights_a_change_replaces(tagged):
    (tagged["repo"] / "dvc.lock").write_text(lock("c" * 32))  # this branch: new weights
    row = release.changes("main").splitlines()[2]
    assert row.startswith("| classifier | `bbbbbbbbbb` | `cccccccccc` | - |")
    assert "v1.1.0 stays as it is" in row and "make release MODEL=classifier" in row
    (tagged["repo"] / "dvc.lock").write_text(lock("a" * 32))  # back to v1.0.0's weights
    row = release.changes("main").splitlines()[2]
    assert "| v1.0.0 (prod) |" in row and "v1.1.0 stays" in row
    git("checkout", "-q", "dvc.lock", cwd=tagged["repo"])
    row = release.changes("main").splitlines()[2]
    assert row.endswith("| v1.1.0 | unchanged |")


def test_a_release_refuses_a_version_that_is_not_semver_or_exists(tagged):
    with pytest.raises(UserError, match=r"1\.0: not a version — use semantic versioning"):
        release.release("classifier", "1.0", None)
    with pytest.raises(UserError, match=r"classifier@v1\.0\.0 exists — versions: v1\.0\.0"):
        release.release("classifier", "v1.0.0", None)


def test_a_release_refuses_uncommitted_changes(tagged):
    (tagged["repo"] / "dvc.lock").write_text(lock("c" * 32))
    with pytest.raises(UserError, match="uncommitted changes — commit them"):
        release.release("classifier", "v2.0.0", None)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def predict(project: Path, model: str, images: list[str], cwd: Path | None = None, check=True):
    return run_cli(
        [sys.executable, "-m", "stages.predict", "--model", model, *images],
        cwd or project,
        check,
    )


@pytest.mark.slow
def test_a_model_is_released_fetched_and_served_by_version_and_stage(
    reproduced_project, tmp_path, monkeypatch
):
    project = reproduced_project
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "first run", cwd=project)
    run_cli([sys.executable, "-m", "stages.release", "classifier", "v1.0.0"], project)
    first_model = project / "models/classifier.keras"
    first = md5(first_model)
    kept = tmp_path / "kept"  # the first model as a file, for predict
    kept.mkdir()
    shutil.copy(first_model, kept / "classifier.keras")
    shutil.copy(first_model.with_suffix(".json"), kept / "classifier.json")
    at_v1 = yaml.safe_load(git("show", "classifier@v1.0.0:dvc.yaml", cwd=project).stdout)[
        "artifacts"
    ]["classifier"]["meta"]
    assert at_v1["model_md5"] == first  # the meta of the version describes its weights
    scores = json.loads((project / "reports/eval/classifier/metrics.json").read_text())
    assert at_v1["test_metrics"]["accuracy"]["value"] == scores["accuracy"]

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_classifier"]["epochs"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("repro", cwd=project)
    assert md5(first_model) != first
    exported = project / "models/export/classifier/assets.extra/metadata.json"
    assert json.loads(exported.read_text())["trained_from"]["model_md5"] == md5(first_model)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "two epochs", cwd=project)
    run_cli([sys.executable, "-m", "stages.release", "classifier", "v1.1.0"], project)
    run_cli(
        [sys.executable, "-m", "stages.release", "classifier", "v1.0.0", "--stage", "prod"],
        project,
    )
    shown = run_cli(["gto", "show", "classifier"], project).stdout
    assert "v1.0.0" in shown and "v1.1.0" in shown and "prod" in shown

    for flag, value in (("--rev", "v1.0.0"), ("--stage", "prod")):
        out = tmp_path / f"got-{value}.keras"
        dvc("artifacts", "get", ".", "classifier", flag, value, "-o", str(out), cwd=project)
        assert md5(out) == first
    got = tmp_path / "latest.tflite"
    dvc("artifacts", "get", ".", "classifier-tflite", "-o", str(got), cwd=project)
    assert md5(got) == md5(project / "models/export/classifier.tflite")

    images = sorted(str(p) for p in (project / "data/sample/classification").rglob("*.png"))[:6]
    as_file = predict(project, str(kept / "classifier.keras"), images).stdout
    by_version = predict(project, "classifier@v1.0.0", images)
    assert by_version.stdout == as_file
    assert "classifier v1.0.0 (prod), git revision" in by_version.stderr
    assert predict(project, "classifier@prod", images).stdout == as_file
    other = tmp_path / "other"  # another checkout of the code, asking this project by path
    git("clone", "-q", str(project), str(other), cwd=tmp_path)
    assert predict(other, f"{project}:classifier@prod", images).stdout == as_file
    assert predict(project, "classifier@latest", images).stdout == (
        predict(project, "models/classifier.keras", images).stdout
    )
    # a cached copy whose bytes are not its version's is fetched again
    rev = git("rev-list", "-n1", "classifier@v1.0.0", cwd=project).stdout.strip()
    cached = next((tmp_path / "cache").rglob(f"classifier/{rev}/classifier.keras"))
    cached.write_bytes(b"not the model")
    assert predict(project, "classifier@v1.0.0", images).stdout == as_file
    fetched = cached.parent
    record = json.loads((fetched / "registry.json").read_text())
    assert record["version"] == "v1.0.0" and record["stages"] == ["prod"]
    assert record["rev"] == rev
    assert record["trained_from"]["model_md5"] == first
    card = (fetched / "model_card_classifier.md").read_text()
    assert "## Provenance" in card and first in card
    assert card.endswith(
        f"classifier v1.0.0 (prod), git revision {record['rev'][:10]}, from {project}.\n"
    )

    # an export by name: the same classes, and its model's card beside it
    tflite = predict(project, "classifier-tflite@prod", images).stdout
    assert [line.split(",")[:2] for line in tflite.splitlines()] == [
        line.split(",")[:2] for line in as_file.splitlines()
    ]
    assert next((tmp_path / "cache").rglob("classifier-tflite/*/model_card_classifier.md"))

    run_cli(
        [
            sys.executable,
            "-m",
            "stages.export",
            "classifier",
            "--model",
            "classifier@prod",
            "--out",
            str(tmp_path / "served"),
        ],
        project,
    )
    served = json.loads((tmp_path / "served/classifier/assets.extra/metadata.json").read_text())
    assert served["registry"]["version"] == "v1.0.0" and served["registry"]["rev"] == record["rev"]
    assert served["trained_from"]["model_md5"] == first
    lock_now = yaml.safe_load((project / "dvc.lock").read_text())
    data = lock_now["stages"]["train-classifier"]["deps"][0]
    assert served["trained_from"]["data"][data["path"]] == data["md5"]

    for model, expected in (
        (
            "classifier@v9.9.9",
            "no version v9.9.9 of classifier — versions: v1.0.0, v1.1.0; stages: prod → v1.0.0",
        ),
        ("classifier@staging", "no stage 'staging' of classifier — versions: v1.0.0, v1.1.0"),
        ("regressor@v1.0.0", "no model named 'regressor' in"),
        ("detector@prod", "detector has no version registered yet — register one with"),
    ):
        refused = predict(project, model, images, check=False)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], refused.stderr


def reports(root: Path, model: str, task: str, md5: str, score: float) -> None:
    """models/<model>.json and the test reports `release` reads its meta from."""
    (root / "models").mkdir(exist_ok=True)
    meta = {"task": task, "image_size": 24, "architecture": "plain_cnn", "model_md5": md5}
    if task == "classification":
        meta["classes"] = ["cat", "dog"]
    (root / f"models/{model}.json").write_text(json.dumps(meta))
    key = "accuracy" if model == "classifier" else "ap50"
    folder = root / "reports/eval" / model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({key: score}))
    (folder / "detail.json").write_text(json.dumps({"ci95": {key: {"low": 0.5, "high": 0.9}}}))


def test_a_release_rewrites_only_its_models_artifacts(workdir):
    Path("dvc.yaml").write_text("stages:\n  a:\n    cmd: echo  # kept\n")
    reports(workdir, "classifier", "classification", "a" * 32, 0.75)
    reports(workdir, "detector", "detection", "b" * 32, 0.6)
    assert release.write_artifacts(["classifier", "detector"])
    assert not release.write_artifacts(["classifier", "detector"])  # nothing new: no change
    reports(workdir, "classifier", "classification", "c" * 32, 0.8)
    reports(workdir, "detector", "detection", "d" * 32, 0.7)
    assert release.write_artifacts(["classifier"])
    text = Path("dvc.yaml").read_text()
    assert text.startswith("stages:\n  a:\n    cmd: echo  # kept\n\n# Models by name")
    found = yaml.safe_load(text)["artifacts"]
    assert sorted(found) == [
        "classifier", "classifier-savedmodel", "classifier-tflite",
        "detector", "detector-savedmodel", "detector-tflite",
    ]  # fmt: skip
    for name in ("classifier", "classifier-tflite"):
        meta = found[name]["meta"]
        assert meta["model_md5"] == "c" * 32 and meta["classes"] == ["cat", "dog"]
        assert meta["input"] == "24x24 RGB, float32 pixels in [0, 255]"
        assert meta["architecture"] == "plain_cnn"
        assert meta["test_metrics"] == {"accuracy": {"value": 0.8, "ci95": [0.5, 0.9]}}
    assert found["detector"]["meta"]["model_md5"] == "b" * 32  # not released: as it was
    assert found["detector-savedmodel"]["path"] == "${paths.exports}/detector"
    assert "classes" not in found["detector"]["meta"]


def test_a_release_leaves_an_artifacts_section_it_did_not_write(workdir):
    Path("dvc.yaml").write_text("artifacts:\n  mine:\n    path: m.pkl\n")
    reports(workdir, "classifier", "classification", "a" * 32, 0.75)
    reports(workdir, "detector", "detection", "b" * 32, 0.6)
    with pytest.raises(UserError, match="an artifacts section this tool did not write"):
        release.write_artifacts(["classifier"])


def test_fetching_names_what_exists_when_a_version_stage_or_repository_does_not(tagged, tmp_path):
    with pytest.raises(UserError, match=r"no version v9\.9\.9 of classifier — versions: v1\.0\.0"):
        registry.fetch(Reference("classifier", version="v9.9.9"))
    with pytest.raises(UserError, match=r"no stage 'dev' of classifier — .* stages: prod → v1\.0"):
        registry.fetch(Reference("classifier", stage="dev"))
    with pytest.raises(UserError, match=r"no model named 'detector' in .* declares no artifacts"):
        registry.fetch(Reference("detector"))
    nowhere = tmp_path / "nowhere"
    with pytest.raises(UserError, match=rf"check that {nowhere} is a git \+ DVC repository"):
        registry.fetch(Reference("classifier", repo=str(nowhere)))


def commit_model(repo: Path, weights: bytes, message: str) -> str:
    """A 'model' of `weights` with its metadata, card and lock, committed (git-tracked)."""
    digest = hashlib.md5(weights).hexdigest()
    (repo / "models").mkdir(exist_ok=True)
    (repo / "models/classifier.keras").write_bytes(weights)
    (repo / "models/classifier.json").write_text(json.dumps({"model_md5": digest}))
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports/model_card_classifier.md").write_text(f"# Model card: {message}\n")
    (repo / "dvc.lock").write_text(lock(digest))
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_fetching_by_stage_caches_the_right_bytes_beside_what_they_are(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    dvc("init", "-q", cwd=repo)
    (repo / "dvc.yaml").write_text(
        "artifacts:\n  classifier:\n    path: models/classifier.keras\n    type: model\n"
    )
    first = commit_model(repo, b"weights one", "one")
    gto("register", "classifier", first, "--version", "v1.0.0", cwd=repo)
    second = commit_model(repo, b"weights two", "two")
    gto("register", "classifier", second, "--version", "v1.1.0", cwd=repo)
    gto("assign", "classifier", "--version", "v1.0.0", "--stage", "prod", cwd=repo)
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # another folder: the repository by path
    got = registry.fetch(Reference("classifier", stage="prod", repo=str(repo)))
    assert got.path.read_bytes() == b"weights one" and got.path.name == "classifier.keras"
    assert (got.version, got.stages, got.rev, got.repo) == ("v1.0.0", ["prod"], first, str(repo))
    assert got.path.parent.name == first and got.path.parent.parent.name == "classifier"
    beside = got.path.parent
    assert json.loads(beside.joinpath("classifier.json").read_text())["model_md5"] == (
        hashlib.md5(b"weights one").hexdigest()
    )
    record = json.loads((beside / "registry.json").read_text())
    assert record == {
        "name": "classifier",
        "version": "v1.0.0",
        "stages": ["prod"],
        "rev": first,
        "repo": str(repo),
        "trained_from": provenance_from_lock(lock(hashlib.md5(b"weights one").hexdigest()),
                                             "classifier"),
    }  # fmt: skip
    assert (beside / "model_card_classifier.md").read_text() == (
        f"# Model card: one\n\n## Registry\n\nclassifier v1.0.0 (prod), git revision"
        f" {first[:10]}, from {repo}.\n"
    )
    latest = registry.fetch(Reference("classifier", repo=str(repo)))
    assert latest.path.read_bytes() == b"weights two" and latest.version == "v1.1.0"
    assert latest.stages == [] and latest.path.parent.name == second
    got.path.write_bytes(b"tampered")  # a copy that is not its version's: fetched again
    again = registry.fetch(Reference("classifier", version="v1.0.0", repo=str(repo)))
    assert again.path == got.path and again.path.read_bytes() == b"weights one"


def released_project(root: Path) -> Path:
    """A git + DVC repository whose one stage is up to date, with the reports `release` reads
    (stand-ins: no training)."""
    shutil.copy(ROOT / "paths.yaml", root / "paths.yaml")
    (root / "dvc.yaml").write_text(
        "vars:\n  - paths.yaml\nstages:\n  note:\n    cmd: echo one > note.txt\n"
        "    deps:\n      - input.txt\n    outs:\n      - note.txt:\n          cache: false\n"
    )
    (root / "input.txt").write_text("input\n")
    reports(root, "classifier", "classification", "a" * 32, 0.75)
    reports(root, "detector", "detection", "b" * 32, 0.6)
    git("init", "-q", "-b", "main", cwd=root)
    dvc("init", "-q", cwd=root)
    dvc("repro", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "pipeline", cwd=root)
    return root


def tags(root: Path) -> set[str]:
    return set(git("tag", cwd=root).stdout.split())


def test_a_release_commits_its_meta_then_tags_the_model_and_its_exports(workdir, capsys):
    from scmrepo.git import Git

    root = released_project(workdir)
    release.release("classifier", "v1.0.0", "prod")
    said = capsys.readouterr().out
    head = git("rev-parse", "--short", "HEAD", cwd=root).stdout.strip()
    assert said == (
        f"release: classifier@v1.0.0 is commit {head}, stage prod — publish with"
        " `git push origin --tags` and `dvc push`\n"
    )
    subject = git("log", "-1", "--format=%s", cwd=root).stdout.strip()
    assert subject == "classifier v1.0.0: its metadata in dvc.yaml's artifacts"
    meta = yaml.safe_load((root / "dvc.yaml").read_text())["artifacts"]["classifier"]["meta"]
    assert meta["model_md5"] == "a" * 32  # the weights this version names
    names = ("classifier", "classifier-savedmodel", "classifier-tflite")
    assert {f"{name}@v1.0.0" for name in names} <= tags(root)
    assert {f"{name}#prod#1" for name in names} <= tags(root)
    scm = Git(str(root))
    # the same version again, with another stage: assigned, no commit, no new version
    release.release("classifier", "v1.0.0", "staging")
    assert "release: classifier@v1.0.0 assigned to staging" in capsys.readouterr().out
    for name in names:
        assert registry.registered(scm, name).stages == {"prod": "v1.0.0", "staging": "v1.0.0"}
    assert git("rev-parse", "--short", "HEAD", cwd=root).stdout.strip() == head
    # a version on a pipeline DVC calls stale: one line naming the stage and the fix
    (root / "input.txt").write_text("changed\n")
    git("commit", "-qam", "input changed", cwd=root)
    with pytest.raises(UserError, match=r"^the pipeline is not up to date \(note\) — run `dvc"):
        release.release("classifier", "v1.1.0", None)
    assert "classifier@v1.1.0" not in tags(root)


def test_the_command_line_refreshes_meta_prints_the_table_or_says_what_it_needs(workdir, capsys):
    root = released_project(workdir)
    release.main(["--meta"])
    assert capsys.readouterr().out == "release: dvc.yaml artifacts refreshed\n"
    release.main(["--meta"])
    assert capsys.readouterr().out == "release: dvc.yaml artifacts already current\n"
    git("commit", "-qam", "meta", cwd=root)
    release.main(["--changes", "main"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | weights on main |") and len(table) == 4
    release.main(["classifier", "v1.0.0", "--stage", "prod"])
    assert ", stage prod — publish" in capsys.readouterr().out
    assert "--changes REV Markdown: registered versions vs REV" in help_text(release.main)
    assert "give MODEL VERSION, --meta or --changes REV" in refuses(release.main, [], capsys)
    assert "give MODEL" in refuses(release.main, ["classifier"], capsys)
    assert "invalid choice: 'resnet'" in refuses(release.main, ["resnet", "v1.0.0"], capsys)

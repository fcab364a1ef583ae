"""`python -m stages.compare`: the paired verdict by hand, and A/B through the real DVC queue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stages import compare
from stages.shared.core.cli import UserError
from tests.conftest import dvc, git, run_cli, usage
from tests.test_pipeline import set_param


def test_the_paired_interval_and_verdict_by_hand():
    a, b = np.array([0.90, 0.92, 0.91]), np.array([0.93, 0.94, 0.95])
    row = compare.verdict_row("accuracy", a, b)
    # Differences 0.03, 0.02, 0.04: mean 0.03, sd 0.01, t(0.975, 2) = 4.3027 → ±0.0248.
    assert row[3] == "+0.0300 (+0.0052 to +0.0548)" and row[4] == "B better"
    assert compare.verdict_row("log_loss", a, b)[4] == "B worse"  # higher log-loss is worse
    noisy = compare.verdict_row("accuracy", a, np.array([0.95, 0.90, 0.92]))
    assert noisy[4] == "cannot tell"
    assert compare.verdict_row("accuracy", a, a.copy())[4] == "cannot tell"


def test_an_unknown_revision_or_too_few_seeds_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "-q", "-b", "main", cwd=tmp_path)
    (tmp_path / "a.txt").write_text("a")
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "a", cwd=tmp_path)
    dvc("init", "-q", cwd=tmp_path)
    with pytest.raises(
        UserError, match=r"B: 'nowhere' is neither a git revision nor a DVC experiment"
    ):
        compare.main(["main", "nowhere", "--seeds", "2"])
    with pytest.raises(UserError, match=r"--seeds: 1 — an interval needs at least 2 seeds"):
        compare.main(["main", "main", "--seeds", "1"])


def write_colours(root, counts: dict[str, tuple[int, tuple[int, int, int]]]) -> None:
    """`<root>/<class>/c_NN.png`: 20×14 images of one colour each, with ±12 of noise."""
    rng = np.random.default_rng(4)
    for label, (count, rgb) in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(rng.normal(rgb, 12, (14, 20, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / label / f"c_{i:02d}.png")


@pytest.mark.slow
def test_identical_configurations_cannot_be_told_apart_and_a_broken_one_is_worse(
    reproduced_project,
):
    """Both premises are built, not hoped for. Identical: B's seeds are A's experiments, so
    every paired difference is 0. Broken: a learning rate of 1e-12 leaves the output layer at
    the train prior (kernel 0), so every seed answers the majority class, red, whose test share
    is under 1/2; A learns classes that differ by ~200 grey levels per channel against ±12 of
    noise, which any training that moves the weights separates completely (both seeds score
    1.0: a float difference between CPUs cannot move a margin that wide)."""
    project = reproduced_project
    write_colours(project / "colours", {"blue": (20, (20, 20, 230)),
                                        "green": (28, (20, 230, 20)),
                                        "red": (40, (230, 20, 20))})  # fmt: skip
    set_param(project, "data.classification", "colours")
    set_param(project, "split.group_by.classification", "none")  # one source per image
    set_param(project, "train_classifier.epochs", 3)
    set_param(project, "train_classifier.architecture", "simple_cnn")
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "run", cwd=project)
    git("checkout", "-q", "-b", "frozen", cwd=project)
    set_param(project, "train_classifier.learning_rate", 1.0e-12)  # a learning rate of ~0
    git("commit", "-q", "-am", "no learning", cwd=project)
    git("checkout", "-q", "main", cwd=project)
    same = run_cli(["python", "-m", "stages.compare", "main", "main", "--seeds", "2"], cwd=project)
    rows = {line.split(" | ")[0].strip("| "): line for line in same.stdout.splitlines()}
    assert rows.get("accuracy", "").endswith("| cannot tell |"), same.stdout + same.stderr
    # B is A's commit: its seeds are A's experiments, not trained again.
    assert same.stdout.count(", already run") == 2, same.stdout
    worse = run_cli(
        ["python", "-m", "stages.compare", "main", "frozen", "--seeds", "2", "--fail-if-worse"],
        cwd=project,
        check=False,
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in worse.stdout.splitlines()}
    assert rows.get("accuracy", "").endswith("| B worse |"), worse.stdout + worse.stderr
    assert worse.returncode == 1
    assert worse.stdout.count(", already run") == 2, worse.stdout  # main's two seeds
    # Four trainings in all: main's two seeds and frozen's two.
    listed = dvc("exp", "list", "--all-commits", "--name-only", cwd=project).stdout.split()
    assert len([name for name in listed if name.startswith("compare-")]) == 4, listed
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=project).stdout.strip() == "main"


class FakeRepository:
    """The git and dvc commands `compare` runs, on branches whose "training" gives known test
    metrics: accuracy = the branch's skill + seed / 1000."""

    def __init__(self, skills: dict[str, float], dirty: bool = False):
        self.skills, self.dirty = skills, dirty
        self.commits = {branch: f"{i + 1:x}" * 40 for i, branch in enumerate(skills)}
        self.head, self.trained, self.applied = "main", [], []
        self.experiments: dict[str, dict[str, dict]] = {c: {} for c in self.commits.values()}

    def __call__(self, *args: str, check: bool = True):
        import subprocess

        def done(stdout: str = "", code: int = 0):
            return subprocess.CompletedProcess(args, code, stdout, "")

        command = list(args[3:] if args[:3] == compare.DVC else args)
        match command:
            case ["git", "rev-parse", "--verify", "--quiet", ref]:
                return done(code=0 if ref.removesuffix("^{commit}") in self.commits else 1)
            case ["exp", "list", "--all-commits", "--name-only"]:
                names = [n for exps in self.experiments.values() for n in exps]
                return done("\n".join([*names, "an-experiment"]))
            case ["git", "status", "--porcelain", "--untracked-files=no"]:
                return done(" M params.yaml" if self.dirty else "")
            case ["git", "rev-parse", "--abbrev-ref", "HEAD"]:
                return done(self.head)
            case ["git", "rev-parse", "HEAD"]:
                return done(self.commits[self.head])
            case ["git", "checkout", "-q", "--", "."]:
                return done()
            case ["git", "checkout", "-q", branch]:
                self.head = branch
                return done()
            case ["exp", "apply", name]:
                self.applied.append(name)
                return done()
            case ["exp", "run", "-n", name, "-S", seeded, "evaluate@classifier"]:
                seed = int(seeded.removeprefix("train_classifier.seed="))
                accuracy = self.skills[self.head] + seed / 1000
                metrics = {"accuracy": accuracy, "macro_f1": accuracy - 0.01}
                self.experiments[self.commits[self.head]][name] = metrics
                self.trained.append((self.head, name))
                return done()
            case ["exp", "show", "--json", "--rev", commit]:
                path = "reports/eval/classifier/metrics.json"
                revs = [
                    {"name": n, "data": {"metrics": {path: {"data": m}}}}
                    for n, m in self.experiments[commit].items()
                ]
                return done(json.dumps([{"rev": commit, "experiments": [{"revs": revs}]}]))
        raise AssertionError(f"unexpected command {args}")


def compare_rows(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("| ").split(" | ") for line in stdout.splitlines() if line.startswith("|")]
    return {row[0]: row for row in rows}


def test_each_seed_trains_once_per_commit_and_the_paired_verdict_follows(monkeypatch, capsys):
    repo = FakeRepository({"main": 0.80, "better": 0.85, "worse": 0.70})
    monkeypatch.setattr(compare, "run", repo)
    compare.main(["main", "better", "--seeds", "3"])
    out = capsys.readouterr().out
    main_names = [f"compare-{'1' * 7}-classifier-seed{s}" for s in (1, 2, 3)]
    better_names = [f"compare-{'2' * 7}-classifier-seed{s}" for s in (1, 2, 3)]
    assert repo.trained == [("main", n) for n in main_names] + [("better", n) for n in better_names]
    rows = compare_rows(out)
    # Paired by seed: every difference is exactly 0.05, so the interval has no width.
    assert rows["accuracy"][1:] == [
        "0.8020 ± 0.0010",
        "0.8520 ± 0.0010",
        "+0.0500 (+0.0500 to +0.0500)",
        "B better",
    ]
    assert rows["macro_f1"][-1] == "B better"
    assert "macro_precision" not in rows  # no metric without values in every run
    assert repo.head == "main"  # back on the branch it started from

    # main's three seeds are measured: only the new configuration trains.
    with pytest.raises(SystemExit) as stopped:
        compare.main(["main", "worse", "--seeds", "3", "--fail-if-worse"])
    assert stopped.value.code == 1
    out = capsys.readouterr().out
    assert out.count(", already run") == 3
    assert [branch for branch, _ in repo.trained[6:]] == ["worse"] * 3
    assert compare_rows(out)["accuracy"][-1] == "B worse"
    assert repo.head == "main"

    # An extra seed trains only that seed, on both sides.
    compare.main(["main", "better", "--seeds", "4", "--fail-if-worse"])
    assert repo.trained[9:] == [
        ("main", f"compare-{'1' * 7}-classifier-seed4"),
        ("better", f"compare-{'2' * 7}-classifier-seed4"),
    ]


def test_an_experiment_is_applied_before_each_seed_and_a_dirty_workspace_is_refused(
    monkeypatch, capsys
):
    repo = FakeRepository({"main": 0.80})
    monkeypatch.setattr(compare, "run", repo)
    compare.main(["main", "an-experiment", "--seeds", "2"])
    assert repo.applied == ["an-experiment", "an-experiment"]
    assert [name for _, name in repo.trained[2:]] == [
        "compare-an-experiment-classifier-seed1",
        "compare-an-experiment-classifier-seed2",
    ]
    assert compare_rows(capsys.readouterr().out)["accuracy"][-1] == "cannot tell"
    dirty = FakeRepository({"main": 0.80}, dirty=True)
    monkeypatch.setattr(compare, "run", dirty)
    with pytest.raises(UserError, match=r"^the git workspace has changes — commit or stash them"):
        compare.main(["main", "main", "--seeds", "2"])
    assert dirty.trained == []


class DetachedRepository(FakeRepository):
    """A FakeRepository whose workspace starts on a commit, not a branch."""

    def __call__(self, *args: str, check: bool = True):
        if list(args) == ["git", "rev-parse", "--abbrev-ref", "HEAD"]:
            import subprocess

            return subprocess.CompletedProcess(args, 0, "HEAD\n", "")
        return super().__call__(*args, check=check)


def test_the_table_and_progress_lines_and_a_detached_start_restored(monkeypatch, capsys):
    repo = DetachedRepository({"main": 0.80, "better": 0.85})
    monkeypatch.setattr(compare, "run", repo)
    compare.main(["main", "better", "--seeds", "2"])
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [
        f"A (main), seed 1: compare-{'1' * 7}-classifier-seed1",
        f"A (main), seed 2: compare-{'1' * 7}-classifier-seed2",
        f"B (better), seed 1: compare-{'2' * 7}-classifier-seed1",
        f"B (better), seed 2: compare-{'2' * 7}-classifier-seed2",
    ]
    assert out[4].split("|")[1:-1] == [
        " metric ",
        " A (main) ",
        " B (better) ",
        " B − A, paired (95% CI) ",
        " verdict ",
    ]
    assert repo.head == "1" * 40  # back on the commit it started from


def test_only_named_experiments_with_test_metrics_count_as_measured(monkeypatch):
    path = "reports/eval/detector/metrics.json"
    shown = [
        {
            "rev": "abc",
            "experiments": [
                {"revs": [{"name": "done", "data": {"metrics": {path: {"data": {"ap50": 0.7}}}}}]},
                {"revs": [{"name": None, "data": {"metrics": {path: {"data": {"ap50": 0.1}}}}}]},
                {"revs": [{"name": "queued", "data": {"metrics": {}}}]},
                {"revs": [{"name": "failed", "data": None}]},
            ],
        },
        {"rev": "workspace", "experiments": None},
    ]

    def fake(*args, check=True):
        import subprocess

        assert list(args[3:]) == ["exp", "show", "--json", "--rev", "abc"]
        return subprocess.CompletedProcess(args, 0, json.dumps(shown), "")

    monkeypatch.setattr(compare, "run", fake)
    assert compare.measured("abc", "detector") == {"done": {"ap50": 0.7}}
    with pytest.raises(UserError, match=r"^queued: no test metrics — see `dvc queue logs queued`$"):
        compare.collect("abc", ["done", "queued"], "detector")


def test_a_failing_command_is_its_own_last_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^git rev-parse --verify: fatal: not a git repository"):
        compare.run("git", "rev-parse", "--verify", "main")
    with pytest.raises(UserError, match=r"^false: failed$"):
        compare.run("false")
    assert compare.run("false", check=False).returncode == 1


def test_the_command_line_names_both_sides(capsys):
    assert usage(compare.main) == (
        "[-h] [--seeds SEEDS] [--model {classifier,detector}] [--fail-if-worse] a b"
        f" {compare.__doc__.splitlines()[0]} positional arguments: a the reference: git revision"
        " or DVC experiment b the candidate: git revision or DVC experiment options: -h, --help"
        " show this help message and exit --seeds SEEDS --model {classifier,detector}"
        " --fail-if-worse"
    )

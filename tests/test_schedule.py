"""The test run's own machinery: the reproduced project kept between runs by the hash of what
built it, and the order that makes the two workers end together (tests/conftest.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from tests.conftest import KEPT_FILES, KEPT_FOLDERS, ROOT, longest_first, reproduced_key


def tree(tmp_path):
    """The files a tiny project's first `dvc repro` is built from, in a root of their own."""
    root = tmp_path / "root"
    for folder in KEPT_FOLDERS:
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in KEPT_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    return root


def test_the_kept_project_changes_with_what_built_it_and_nothing_else(tmp_path):
    root = tree(tmp_path)
    key = reproduced_key(root, env={})
    assert reproduced_key(root, env={}) == key
    assert reproduced_key(root, env={"ONEDNN_MAX_CPU_ISA": "AVX2"}) != key
    assert reproduced_key(root, env={"TF_NUM_INTRAOP_THREADS": "1"}) != key
    assert reproduced_key(root, env={"CUDA_VISIBLE_DEVICES": ""}) == key  # moves nothing here
    (root / "stages/__pycache__").mkdir(exist_ok=True)
    (root / "stages/__pycache__/x.pyc").write_bytes(b"compiled")
    assert reproduced_key(root, env={}) == key
    for path in ("stages/shared/training/loop.py", "dvc.yaml", "params.yaml",
                 "requirements.lock", "bench/project.py", ".dvc/plots/confusion.json"):  # fmt: skip
        edited = root / path
        if not edited.exists():  # a template: any one of the folder's
            edited = next(p for p in sorted(edited.parent.iterdir()) if p.is_file())
        before = edited.read_bytes()
        edited.write_bytes(before + b"\n")
        assert reproduced_key(root, env={}) != key, path
        edited.write_bytes(before)
    (root / "stages/new_stage.py").write_text("")
    assert reproduced_key(root, env={}) != key


@dataclass
class Item:
    nodeid: str
    fixturenames: list = field(default_factory=list)
    module_fixture: bool = False  # shares a module-scoped fixture with its module's others


def unit(item: Item) -> str:
    return item.nodeid.split("::")[0] if item.module_fixture else item.nodeid


def order(items: list, seconds: dict) -> list:
    return longest_first(items, seconds, unit_of=unit)


def two_workers(items: list, seconds: dict) -> float:
    """When the later of two `--dist worksteal` workers ends: each runs its half of the list in
    order; one that runs out takes the second half of the other's remaining queue."""
    half = len(items) // 2
    queues, clock = [list(items[:half]), list(items[half:])], [0.0, 0.0]
    while queues[0] or queues[1]:
        worker = 0 if clock[0] <= clock[1] else 1
        if not queues[worker]:
            other = queues[1 - worker]
            queues[worker], queues[1 - worker] = other[len(other) // 2 :], other[: len(other) // 2]
            if not queues[worker]:
                queues[worker], queues[1 - worker] = queues[1 - worker], []
        clock[worker] += seconds[queues[worker].pop(0).nodeid]
    return max(clock)


def test_the_longest_tests_are_dealt_to_both_workers_first():
    seconds = {f"tests/test_a.py::t{i}": s for i, s in enumerate([5, 5, 5, 5, 20, 20, 20, 20])}
    items = [Item(nodeid) for nodeid in seconds]
    ordered = order(items, seconds)
    assert [seconds[i.nodeid] for i in ordered] == [20, 20, 5, 5, 20, 20, 5, 5]
    assert sorted(i.nodeid for i in ordered) == sorted(seconds)  # every test, once
    # In collection order one worker gets all four 20 s tests: the other steals one of them late.
    assert two_workers(items, seconds) == 60
    assert two_workers(ordered, seconds) == sum(seconds.values()) / 2  # they end together


def test_an_unknown_test_counts_as_its_modules_mean_and_the_shared_project_comes_first():
    seconds = {"tests/test_a.py::old": 10.0, "tests/test_a.py::older": 30.0}
    seconds |= {"tests/test_b.py::x": 1.0, "tests/test_b.py::y": 2.0, "tests/test_b.py::z": 3.0}
    new = Item("tests/test_a.py::new")  # 20 s expected: between the two
    stranger = Item("tests/test_c.py::s")  # its module unknown: the median, 3 s
    ordered = order([*(Item(n) for n in seconds), new, stranger], seconds)
    # Dealt 30 | 20 + 10 | 3 | 3 (the stranger) | 2 | 1: the new test leads the second half.
    assert [i.nodeid for i in ordered] == [
        "tests/test_a.py::older", "tests/test_b.py::z", "tests/test_b.py::y",
        "tests/test_a.py::new", "tests/test_a.py::old", "tests/test_c.py::s", "tests/test_b.py::x",
    ]  # fmt: skip
    shared = [Item(n, ["reproduced"]) for n in ("tests/test_b.py::x", "tests/test_b.py::y")]
    ordered = order(
        [Item("tests/test_a.py::older"), *shared, Item("tests/test_a.py::old")], seconds
    )
    # First half: the shared project's tests first; second half: theirs last.
    assert [i.nodeid for i in ordered] == [
        "tests/test_b.py::x", "tests/test_a.py::older", "tests/test_a.py::old", "tests/test_b.py::y"
    ]  # fmt: skip


def test_the_tests_of_a_module_scoped_fixture_stay_together_and_the_counts_stay_even():
    seconds = {f"tests/test_m.py::t{i}": 10.0 for i in range(4)}  # one fixture: 40 s together
    seconds |= {f"tests/test_f.py::t{i}": float(i + 1) for i in range(8)}  # 1 to 8 s, free
    items = [Item(n, module_fixture=n.startswith("tests/test_m")) for n in seconds]
    ordered = [i.nodeid for i in order(items, seconds)]
    half = [ordered[:6], ordered[6:]]  # xdist's split: 6 and 6
    module = [n for n in ordered if n.startswith("tests/test_m")]
    assert any(module == h[: len(module)] for h in half), ordered  # together, in one half
    # The module's 40 s against 36 s of free tests, six a half: the two shortest join the
    # module (43 against 33 s is the closest six and six can be); stealing evens the rest.
    assert sorted(sum(seconds[n] for n in h) for h in half) == [33.0, 43.0], ordered

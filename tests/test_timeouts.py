"""conftest.py's time limits: scaled by how busy the machine is, never below the base."""

from __future__ import annotations

import os

from tests import conftest


def test_the_factor_follows_the_load_per_core_and_never_drops_below_one(monkeypatch):
    monkeypatch.delenv("TEST_TIMEOUT_FACTOR", raising=False)
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0 * cores, 0.0, 0.0))
    assert conftest.slowdown() >= 3.0  # three jobs a core: three times the time
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert conftest.slowdown() >= 1.0


def test_the_factor_can_be_set_by_hand(monkeypatch):
    monkeypatch.setenv("TEST_TIMEOUT_FACTOR", "2.5")
    assert conftest.slowdown() == 2.5


def test_every_test_carries_a_limit_of_its_kind(request):
    # Set at collection, from the factor measured then: the fast base or more, never less.
    limit = request.node.get_closest_marker("timeout").args[0]
    assert limit >= conftest.FAST_LIMIT

"""Reconstruction fixtures: shipped grids on a session's sheet, facility staff, tilt-series files."""

from __future__ import annotations

import pytest

from tests.beamtime.factories import beamline, staff_user
from tests.reconstruction.factories import shipped_grids, write_mrc_series


@pytest.fixture
def shipped(lab, member, monkeypatch):
    return shipped_grids(lab=lab, member=member, monkeypatch=monkeypatch)


@pytest.fixture
def beam_session(shipped):
    return shipped[0]


@pytest.fixture
def grid(shipped):
    return shipped[1][0]


@pytest.fixture
def staff(db):
    return staff_user(facility=beamline("hzb-u41-txm").facility)


@pytest.fixture
def alba_staff(db):
    return staff_user(facility=beamline("alba-mistral").facility)


@pytest.fixture
def mrc_series(tmp_path):
    """(path of an MRC stack with its .tlt beside it, projections, angles)."""
    return write_mrc_series(tmp_path)


class _CommitNow:
    """`django.db.transaction` whose on_commit runs at once: a test inside one transaction that never
    commits still sees what would follow a commit (the queued tasks, run eagerly)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def on_commit(self, func, using=None, robust=False):
        func()


@pytest.fixture(autouse=True)
def _commit_callbacks_run_at_once(request, monkeypatch):
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        return  # real commits: callbacks run when they should
    from django.db import transaction

    from reconstruction import services

    monkeypatch.setattr(services, "transaction", _CommitNow(transaction))

"""Beamtime fixtures: the HZB beamline, a proposal and a session of `lab`, facility staff, gate facts."""

from __future__ import annotations

import pytest

from beamtime import quality
from characterization.selectors import GridQualityFacts
from tests.beamtime.factories import GOOD_FACTS, ProposalFactory, beamline, schedule, staff_user
from tests.factories import make_grids


@pytest.fixture
def hzb(db):
    return beamline("hzb-u41-txm")


@pytest.fixture
def staff(hzb):
    return staff_user(facility=hzb.facility)


@pytest.fixture
def alba_staff(db):
    return staff_user(facility=beamline("alba-mistral").facility)


@pytest.fixture
def proposal(lab, member):
    return ProposalFactory(lab=lab, created_by=member, facility=beamline().facility)


@pytest.fixture
def session(proposal, member):
    return schedule(proposal=proposal, by=member, days=10, hours=24)


@pytest.fixture
def facts(monkeypatch):
    """Characterization facts per grid id (default: a grid that passes every default rule)."""
    table: dict[int, dict] = {}

    def fake(grid):
        return GridQualityFacts(grid_id=grid.pk, **table.get(grid.pk, GOOD_FACTS))

    monkeypatch.setattr(quality, "characterization_facts", fake)
    return table


@pytest.fixture
def accepted_grids(lab, member):
    return make_grids(lab=lab, user=member, count=8, state="accepted")

"""Fixtures shared by the vitrification tests: one instrument of each kind and three seeded grids."""

import pytest

from grids.lifecycle import GridState
from tests.factories import make_grids
from tests.vitrification.factories import HPFFactory, PlungerFactory


@pytest.fixture
def plunger(lab):
    return PlungerFactory(lab=lab)


@pytest.fixture
def hpf(lab):
    return HPFFactory(lab=lab)


@pytest.fixture
def seeded(lab, member):
    return make_grids(lab=lab, user=member, count=3, state=GridState.SEEDED)

"""The demo loader: instruments of both kinds, one run of each, and nothing twice."""

from __future__ import annotations

import pytest

from grids.lifecycle import GridState
from tests.factories import make_grids
from vitrification import demo
from vitrification.models import GridOutcome, HPFRun, Instrument, PlungeRun

pytestmark = pytest.mark.django_db


def test_demo_load_is_idempotent_and_vitrifies_some_seeded_grids(lab, lab_admin):
    seeded = make_grids(lab=lab, user=lab_admin, count=8, state=GridState.SEEDED)
    ctx = {"lab": lab, "admin": lab_admin, "seeded_grids": seeded}

    demo.load(ctx)
    counts = (
        Instrument.objects.count(),
        PlungeRun.objects.count(),
        HPFRun.objects.count(),
        GridOutcome.objects.count(),
    )
    demo.load(dict(ctx, seeded_grids=seeded))

    assert counts == (3, 1, 1, 5)
    assert (Instrument.objects.count(), PlungeRun.objects.count(), HPFRun.objects.count()) == counts[:3]
    assert GridOutcome.objects.count() == counts[3]
    assert set(Instrument.objects.values_list("kind", flat=True)) == {"plunger", "hpf"}
    assert len(ctx["vitrified_grids"]) == 4
    assert {g.state for g in ctx["seeded_grids"]} == {GridState.SEEDED}


def test_demo_load_reads_ctx_defensively(lab, lab_admin):
    demo.load({})
    demo.load({"lab": lab, "admin": lab_admin})
    assert Instrument.objects.count() == 3
    assert not PlungeRun.objects.exists()

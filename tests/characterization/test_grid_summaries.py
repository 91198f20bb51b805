"""The QC dashboard's grid summaries: kept by the services as a grid walks its path, rebuilt on demand.

Every database test of the suite also checks that the kept summaries equal a rebuild (tests/conftest.py);
these tests say what a summary holds at each step and what the rebuild and the registry refuse or repair.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from characterization import services as characterization_services
from characterization.models import CheckStage, GridSummary
from characterization.summaries import grid_summaries_rebuild, summaries_compare
from grids import insights
from grids import services as grid_services
from tests.characterization.factories import make_check
from tests.factories import CellLineFactory, make_grids
from tests.vitrification.factories import PLUNGE_PARAMS, PlungerFactory
from vitrification import services as vitrification_services

pytestmark = pytest.mark.django_db


def _bits(*keys: str) -> int:
    stages = {s.key: s for s in insights.funnel_stages()}
    return sum(insights.reached_bit(stages[k]) for k in keys)


def test_a_summary_follows_its_grid_from_registration_to_a_qc_decision(lab, member, reviewer):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    summary = GridSummary.objects.get(grid=grid)
    assert (summary.lab_id, summary.grid_type_id, summary.state) == (lab.pk, grid.lot.grid_type_id, "registered")
    assert summary.reached == 0 and summary.method == "" and summary.decision == ""

    line = CellLineFactory(lab=lab)
    seeding = grid_services.seeding_record(grids=[grid], cell_line=line, by=member)
    summary.refresh_from_db()
    assert (summary.state, summary.cell_line_id, summary.seeded_at) == ("seeded", line.pk, seeding.seeded_at)
    assert summary.reached == _bits("seeded")

    plunger = PlungerFactory(lab=lab)
    vitrification_services.plunge_run_record(grids=[grid], instrument=plunger, by=member, **PLUNGE_PARAMS)
    summary.refresh_from_db()
    assert (summary.method, summary.instrument_id) == ("plunger", plunger.pk)
    assert summary.blot_time_s == PLUNGE_PARAMS["blot_time_s"]
    assert summary.reached == _bits("seeded", "vitrified")

    check = make_check(lab=lab, user=member, grid=grid, stage=CheckStage.POST_VITRIFICATION, ice_quality_class=3)
    summary.refresh_from_db()
    assert (summary.ice_quality_class, summary.post_checked_at) == (3, check.checked_at)
    assert summary.reached == _bits("seeded", "vitrified", "checked")
    # An edited score is what the dashboard shows next.
    characterization_services.check_update(lm_check=check, by=member, ice_quality_class=1)
    summary.refresh_from_db()
    assert summary.ice_quality_class == 1

    characterization_services.qc_decide(lm_check=check, decision="rejected", reasons="thick ice", by=reviewer)
    characterization_services.qc_decide(lm_check=check, decision="accepted", reasons="thin after all", by=reviewer)
    summary.refresh_from_db()
    assert (summary.state, summary.decision) == ("accepted", "accepted")
    assert summary.reached == _bits("seeded", "vitrified", "checked", "accepted")


def test_a_refused_move_leaves_the_summary_as_it_was(lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    before = GridSummary.objects.get(grid=grid)
    with pytest.raises(Exception):  # noqa: B017 - registered → imaged is not a move of the map
        grid_services.grids_transition(grids=[grid], to_state="imaged", by=member)
    after = GridSummary.objects.get(grid=grid)
    assert (after.state, after.reached) == (before.state, before.reached) == ("registered", 0)


@pytest.mark.summaries_unchecked
def test_the_rebuild_repairs_summaries_changed_or_lost_by_hand(lab, member):
    grids = make_grids(lab=lab, user=member, count=3, state="vitrified")
    GridSummary.objects.filter(grid=grids[0]).update(state="imaged", reached=0)
    GridSummary.objects.filter(grid=grids[1]).delete()
    differences = summaries_compare()
    assert {(pk, field) for pk, field, *_ in differences} == {
        (grids[0].pk, "state"),
        (grids[0].pk, "reached"),
        (grids[1].pk, "row"),
    }
    out = StringIO()
    call_command("grid_summaries_rebuild", stdout=out)
    assert "Recomputed the summaries of 3 grids" in out.getvalue()
    assert summaries_compare() == []
    assert grid_summaries_rebuild() == 3


def test_a_funnel_stage_must_have_a_bit_of_its_own():
    taken = next(s for s in insights.funnel_stages() if s.bit is not None)
    rows = insights.StageRows(GridSummary, "grid")
    with pytest.raises(ValueError, match="taken"):
        insights.funnel_stage_register(insights.FunnelStage("another", "Another", 99, rows, bit=taken.bit))
    with pytest.raises(ValueError, match="needs a bit"):
        insights.funnel_stage_register(insights.FunnelStage("another", "Another", 99, rows))
    assert "another" not in {s.key for s in insights.funnel_stages()}

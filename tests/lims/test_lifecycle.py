"""The one lifecycle mechanism (lims.lifecycle) as grids, sessions and shipments use it."""

from __future__ import annotations

import pytest

from beamtime.lifecycle import SESSION_LIFECYCLE, SHIPMENT_LIFECYCLE
from beamtime.models import SessionStatus, ShipmentStatus
from grids.lifecycle import GridState
from grids.models import Grid, GridTransition
from grids.services import grids_transition
from lims.errors import ConflictError
from tests.factories import make_grids


def test_a_precondition_is_checked_under_the_lock_and_a_refusal_changes_nothing(lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    before = GridTransition.objects.count()
    with pytest.raises(ConflictError, match="registered grid cannot become vitrified"):
        grids_transition(
            grids=[grid],
            to_state=GridState.DISCARDED,
            by=member,
            reason="fell off the tweezers",
            from_states={GridState.SEEDED},
            refuse_as=GridState.VITRIFIED,
        )
    assert Grid.objects.get(pk=grid.pk).state == GridState.REGISTERED
    assert GridTransition.objects.count() == before


def test_every_refused_grid_is_named_and_none_of_the_others_moves(lab, member):
    seeded, registered = (
        make_grids(lab=lab, user=member, count=2, state="seeded")[0],
        make_grids(lab=lab, user=member, count=1)[0],
    )
    with pytest.raises(ConflictError) as refused:
        grids_transition(grids=[seeded, registered], to_state=GridState.VITRIFIED, by=member)
    assert refused.value.details["refused"] == [
        f"{registered.barcode}: A registered grid cannot become vitrified; from registered it can go to: discarded, seeded."
    ]
    assert Grid.objects.get(pk=seeded.pk).state == GridState.SEEDED


def test_each_move_writes_one_audit_row_with_who_and_why(lab, member):
    grids = make_grids(lab=lab, user=member, count=3, state="seeded")
    grids_transition(grids=grids, to_state=GridState.DISCARDED, by=member, reason="cracked")
    rows = GridTransition.objects.filter(grid__in=grids, to_state=GridState.DISCARDED)
    assert rows.count() == 3
    assert {(r.from_state, r.by_id, r.reason) for r in rows} == {(GridState.SEEDED, member.pk, "cracked")}


def test_sessions_and_shipments_refuse_in_the_same_words_as_grids():
    assert SESSION_LIFECYCLE.refusal(SessionStatus.FINISHED, SessionStatus.PLANNED) == (
        "A finished session cannot become planned; from finished it can go to: nowhere (final status)."
    )
    assert SHIPMENT_LIFECYCLE.refusal(ShipmentStatus.PREPARED, ShipmentStatus.RETURNED).startswith(
        "A prepared shipment cannot become returned; from prepared it can go to: shipped"
    )
    assert not SHIPMENT_LIFECYCLE.can_move(ShipmentStatus.RETURNED, ShipmentStatus.SHIPPED)

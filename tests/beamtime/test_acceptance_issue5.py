"""Regressions found by the issue-5 acceptance check (cases the first tests did not cover)."""

from __future__ import annotations

import datetime

import pytest

from beamtime import exports, services
from beamtime.models import SampleSheetEntry
from lims.errors import ConflictError
from tests.beamtime.factories import ProposalFactory, at, beamline, schedule
from tests.factories import StorageBoxFactory, make_grids


def _over_allocation(*, proposal, member, staff):
    """Two sessions of one proposal whose 3+1 shifts exceed its 3 allocated (the second by staff override)."""
    proposal.shifts_allocated = 3
    proposal.save()
    first = schedule(proposal=proposal, by=member, days=10, hours=24)  # 3 shifts
    start = at(20)
    second = services.session_schedule(
        beamline=beamline(), proposal=proposal, start=start, end=start + datetime.timedelta(hours=8),
        by=staff, override_reason="beam loss compensation",
    )  # fmt: skip
    return first, second


def test_editing_a_session_without_adding_shifts_is_not_refused_by_the_allocation(proposal, member, staff):
    """Once staff scheduled beyond the allocation, the lab can still edit notes or move a session
    within its length; only growing it needs the override again."""
    first, second = _over_allocation(proposal=proposal, member=member, staff=staff)
    services.session_reschedule(session=second, by=member, notes="bring the shuttle")
    moved = services.session_reschedule(
        session=first, by=member, start=first.start + datetime.timedelta(hours=1),
        end=first.end + datetime.timedelta(hours=1),
    )  # fmt: skip
    assert moved.shifts == 3
    with pytest.raises(ConflictError, match="allocated"):
        services.session_reschedule(session=second, by=member, end=second.end + datetime.timedelta(hours=8))


def test_a_session_cannot_be_moved_onto_another_sheet_of_its_grids(lab, member, facts):
    """A grid on the sheets of two separate sessions: moving one session over the other is refused."""
    hzb, alba = beamline(), beamline("alba-mistral")
    first = schedule(proposal=ProposalFactory(lab=lab, created_by=member), by=member, days=10, hours=8)
    alba_proposal = ProposalFactory(lab=lab, created_by=member, facility=alba.facility)
    second = services.session_schedule(
        beamline=alba, proposal=alba_proposal, start=first.end, end=first.end + datetime.timedelta(hours=8), by=member
    )
    assert hzb.pk != alba.pk
    grid = make_grids(lab=lab, user=member, count=1, state="accepted")[0]
    services.sample_sheet_add(session=first, grid=grid, by=member)
    services.sample_sheet_add(session=second, grid=grid, by=member)  # back to back: allowed
    with pytest.raises(ConflictError, match="overlap"):
        services.session_reschedule(session=second, by=member, start=first.start + datetime.timedelta(hours=4))
    second.refresh_from_db()
    assert second.start == first.end


def test_a_packed_grid_cannot_leave_the_sheet(session, member, staff, accepted_grids, facts):
    grid = accepted_grids[0]
    entry = services.sample_sheet_add(session=session, grid=grid, by=member)
    shipment = services.shipment_create(session=session, dewar="CX-1", by=member)
    with pytest.raises(ConflictError, match="shipment"):
        services.sample_sheet_remove(entry=entry, by=member)
    services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    with pytest.raises(ConflictError, match="shipment"):
        services.sample_sheet_remove(entry=entry, by=staff)
    assert SampleSheetEntry.objects.filter(pk=entry.pk).exists()
    grid.refresh_from_db()
    assert grid.state == "shipped"


def test_a_lab_admin_may_override_the_gate_like_a_qc_reviewer(session, lab_admin, accepted_grids, facts):
    facts[accepted_grids[0].pk] = {"post_vitrification_check": False}
    entry = services.sample_sheet_add(
        session=session, grid=accepted_grids[0], by=lab_admin, override_reason="only grid of this strain"
    )
    assert not entry.gate_passed and entry.override_by == lab_admin


def test_manifest_pdf_carries_a_linear_barcode_per_grid(session, member, lab, accepted_grids, facts):
    box = StorageBoxFactory(lab=lab, capacity=4)
    from grids import services as grid_services

    grid_services.grids_move(grids=accepted_grids[:1], box=box, by=member)
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    shipment = services.shipment_create(session=session, dewar="CX-2", by=member)
    items = list(shipment.items.select_related("grid__lot__grid_type"))
    calls = []
    from reportlab.graphics.barcode import code128

    original = code128.Code128.drawOn

    def spy(self, canvas, x, y, *args, **kwargs):
        calls.append(self.value)
        return original(self, canvas, x, y, *args, **kwargs)

    code128.Code128.drawOn = spy
    try:
        pdf = exports.manifest_pdf(shipment, items)
    finally:
        code128.Code128.drawOn = original
    assert pdf.startswith(b"%PDF")
    assert accepted_grids[0].barcode in calls and box.barcode in calls


def test_targets_page_refuses_an_unknown_format(web, session):
    assert web.get(f"/beamtime/sessions/{session.pk}/targets.xml").status_code == 404
    assert web.get(f"/beamtime/sessions/{session.pk}/targets.csv").status_code == 200


def test_after_the_freeze_a_member_cannot_unfreeze_the_sheet_by_moving_the_deadline(session, member, staff):
    from django.utils import timezone

    from beamtime.models import BeamtimeSession

    BeamtimeSession.objects.filter(pk=session.pk).update(freeze_at=timezone.now() - datetime.timedelta(minutes=1))
    session.refresh_from_db()
    with pytest.raises(ConflictError, match="froze"):
        services.session_reschedule(session=session, by=member, freeze_at=session.start)
    later = services.session_reschedule(session=session, by=staff, freeze_at=session.start)
    assert later.freeze_at == session.start


def test_a_grid_away_in_a_dewar_cannot_join_another_sheet(session, proposal, member, accepted_grids, facts):
    grid = accepted_grids[0]
    services.sample_sheet_add(session=session, grid=grid, by=member)
    shipment = services.shipment_create(session=session, dewar="CX-3", by=member)
    services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    later = schedule(proposal=proposal, by=member, days=30, hours=8)
    with pytest.raises(ConflictError, match="shipment"):
        services.sample_sheet_add(session=later, grid=grid, by=member)
    grid.refresh_from_db()
    assert grid.state == "shipped"

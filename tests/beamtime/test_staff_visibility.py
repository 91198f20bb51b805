"""Facility staff see only what their beamlines need: the grids on their own sample sheets."""

from __future__ import annotations

import pytest
from django.test import Client

from beamtime import services
from tests.beamtime.factories import ProposalFactory, beamline, schedule


@pytest.fixture
def alba_session(lab, member):
    proposal = ProposalFactory(lab=lab, created_by=member, facility=beamline("alba-mistral").facility)
    return schedule(proposal=proposal, by=member, days=40, hours=8, bl=beamline("alba-mistral"))


def test_staff_pick_only_grids_on_their_facilitys_sheets(
    web, staff, session, alba_session, accepted_grids, facts, member
):
    on_our_sheet, at_alba, unbooked = accepted_grids[0], accepted_grids[1], accepted_grids[2]
    other_session = schedule(proposal=session.proposal, by=member, days=30, hours=8)
    services.sample_sheet_add(session=other_session, grid=on_our_sheet, by=member)
    services.sample_sheet_add(session=alba_session, grid=at_alba, by=member)

    client = Client()
    client.force_login(staff)
    page = client.get(f"/beamtime/sessions/{session.pk}/").content.decode()
    assert on_our_sheet.barcode in page
    assert at_alba.barcode not in page
    assert unbooked.barcode not in page
    gate = client.get(f"/beamtime/sessions/{session.pk}/", {"grid": at_alba.pk}).content.decode()
    assert at_alba.barcode not in gate

    member_page = web.get(f"/beamtime/sessions/{session.pk}/").content.decode()
    assert at_alba.barcode in member_page and unbooked.barcode in member_page

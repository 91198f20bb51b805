"""The session form: every problem at once, in words, and choices that agree (proposal and beamline)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from beamtime.models import BeamtimeSession
from tests.beamtime.factories import ProposalFactory, at, beamline

pytestmark = pytest.mark.django_db


def test_a_proposal_of_another_facility_and_an_end_before_the_start_are_both_said(client, lab, member):
    hzb, alba = beamline("hzb-u41-txm"), beamline("alba-mistral")
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility, number="HZB-77")
    client.force_login(member)
    start = at(10)
    response = client.post(
        reverse("beamtime:session-create"),
        {
            "beamline": alba.pk,
            "proposal": proposal.pk,
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": (start.replace(hour=6)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "HZB-77 was granted by" in errors["proposal"][0] and str(alba.facility) in errors["proposal"][0]
    assert "before or when it starts" in errors["end"][0]
    assert not BeamtimeSession.objects.exists()


def test_the_options_carry_their_facility_so_the_page_offers_only_proposals_that_agree(client, lab, member):
    hzb = beamline("hzb-u41-txm")
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    client.force_login(member)
    text = client.get(reverse("beamtime:session-create")).content.decode()
    assert f'data-facility="{hzb.facility_id}"' in text
    assert 'data-facility-filter="beamline"' in text
    assert f'value="{proposal.pk}" data-facility="{hzb.facility_id}"' in text


def test_a_session_years_ahead_is_refused_with_the_date_read(client, lab, member):
    hzb = beamline("hzb-u41-txm")
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    client.force_login(member)
    start = at(365 * 4)
    response = client.post(
        reverse("beamtime:session-create"),
        {
            "beamline": hzb.pk,
            "proposal": proposal.pk,
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": start.replace(hour=20).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert "more than three years ahead" in response.context["form"].errors["start"][0]

"""The home page of each role, and the next-step panel of a grid."""

from __future__ import annotations

import pytest
from django.urls import reverse

from beamtime.models import Shipment, ShipmentStatus
from characterization.models import CheckStage
from tests.beamtime.factories import ProposalFactory, beamline, schedule, staff_user
from tests.characterization.factories import make_check
from tests.factories import make_grids

pytestmark = pytest.mark.django_db


def test_a_bench_scientist_sees_the_grids_waiting_with_their_next_step(client, lab, member):
    registered = make_grids(lab=lab, user=member, count=2)
    seeded = make_grids(lab=lab, user=member, count=1, state="seeded")
    vitrified = make_grids(lab=lab, user=member, count=1, state="vitrified")
    client.force_login(member)
    text = client.get("/").content.decode()
    assert "Waiting for you at the bench" in text
    assert f"{reverse('grids:seeding-create')}?grids={registered[0].pk}&amp;grids={registered[1].pk}" in text
    assert f"{reverse('vitrification:vitrify')}?grids={seeded[0].pk}" in text
    assert reverse("characterization:check-create", args=[vitrified[0].pk]) in text
    assert "You belong to no lab yet" not in text
    # A member reviews nothing: no dashboard link for them.
    assert reverse("grids:qc-dashboard") not in text


def test_a_reviewer_sees_their_queue_and_the_dashboard_link(client, lab, member, reviewer):
    check = make_check(lab=lab, user=member)
    client.force_login(reviewer)
    text = client.get("/").content.decode()
    assert "QC dashboard" in text and reverse("grids:qc-dashboard") in text
    assert reverse("characterization:check-detail", args=[check.pk]) in text


def test_facility_staff_see_their_beamlines_and_no_lab_prompt(client, lab, member):
    hzb = beamline("hzb-u41-txm")
    staff = staff_user(facility=hzb.facility)
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    session = schedule(proposal=proposal, by=member, days=10, hours=24, bl=hzb)
    shipment = Shipment.objects.create(
        session=session, lab=lab, dewar="Dewar 7", created_by=member, status=ShipmentStatus.SHIPPED
    )
    client.force_login(staff)
    text = client.get("/").content.decode()
    assert "You belong to no lab yet" not in text
    assert "Your beamlines" in text
    assert reverse("beamtime:session-detail", args=[session.pk]) in text
    assert reverse("beamtime:shipment-detail", args=[shipment.pk]) in text
    # No lab work (lots, seeding) for someone in no lab.
    assert "Waiting for you at the bench" not in text


def test_someone_in_no_lab_is_told_how_to_join(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert "You belong to no lab yet" in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("state", "words", "button"),
    [
        ("registered", "Seed cells on this grid", "Seed this grid"),
        ("seeded", "Freeze it", "Plunge-freeze this grid"),
        ("vitrified", "post-vitrification check", "Record the post-vitrification check"),
        ("discarded", "Discarded: nothing more", None),
    ],
)
def test_every_grid_page_says_the_next_step_with_its_button(client, lab, member, state, words, button):
    grid = make_grids(lab=lab, user=member, count=1, state=state)[0]
    client.force_login(member)
    text = client.get(reverse("grids:grid-detail", args=[grid.pk])).content.decode()
    assert "Next step" in text and words in text
    if button:
        assert button in text


def test_a_checked_grid_tells_a_member_to_wait_and_a_reviewer_to_decide(client, lab, member, reviewer):
    check = make_check(lab=lab, user=member, stage=CheckStage.POST_VITRIFICATION)
    url = reverse("grids:grid-detail", args=[check.grid_id])
    client.force_login(member)
    assert "Wait for a QC reviewer" in client.get(url).content.decode()
    client.force_login(reviewer)
    assert "Review the check" in client.get(url).content.decode()


def test_an_accepted_grid_explains_the_gate_rules_it_does_not_meet_yet(client, lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="accepted")[0]
    hzb = beamline("hzb-u41-txm")
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    session = schedule(proposal=proposal, by=member, days=10, hours=24, bl=hzb)
    client.force_login(member)
    text = client.get(reverse("grids:grid-detail", args=[grid.pk])).content.decode()
    assert "Book it into a beamtime session" in text
    assert reverse("beamtime:session-detail", args=[session.pk]) in text
    # The default gate wants a post-vitrification check, which this grid lacks: said before booking.
    assert "record a post-vitrification check first" in text or "upload an atlas image" in text


def test_a_shipped_grid_offers_no_seed_or_vitrify_button(client, lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="shipped")[0]
    client.force_login(member)
    text = client.get(reverse("grids:grid-detail", args=[grid.pk])).content.decode()
    assert "Seed this grid" not in text and "Plunge-freeze" not in text


def test_facility_staff_get_no_lab_menus_and_the_lot_form_explains_instead_of_an_empty_list(client):
    staff = staff_user(facility=beamline("hzb-u41-txm").facility)
    client.force_login(staff)
    text = client.get("/").content.decode()
    assert reverse("grids:lot-list") not in text and reverse("beamtime:session-list") in text
    text = client.get(reverse("grids:lot-create")).content.decode()
    assert "you belong to no lab yet" in text and 'name="lot_number"' not in text


def test_lab_members_get_the_grouped_menus(client, member):
    client.force_login(member)
    text = client.get("/").content.decode()
    assert (
        text.count('<details class="menu">') == 5
    )  # vitrification, light microscopy, beamtime, reconstruction + the grids group
    assert reverse("grids:lot-list") in text

"""Beamtime pages: calendar, session with sheet and gate, shipment, proposals, policies, feeds."""

from __future__ import annotations

import pytest
from django.utils import timezone

from beamtime import services
from tests.beamtime.factories import GOOD_FACTS


@pytest.mark.parametrize("view", ["month", "week"])
def test_calendar_shows_the_session(web, session, view):
    day = timezone.localtime(session.start).date().isoformat()
    response = web.get(f"/beamtime/?view={view}&date={day}&beamline={session.beamline_id}")
    assert response.status_code == 200
    assert f"/beamtime/sessions/{session.pk}/" in response.content.decode()


def test_calendar_by_lab_hides_other_labs(client, outsider, session):
    client.force_login(outsider)
    day = timezone.localtime(session.start).date().isoformat()
    assert f"/beamtime/sessions/{session.pk}/" not in client.get(f"/beamtime/?date={day}").content.decode()
    assert client.get(f"/beamtime/sessions/{session.pk}/").status_code == 404


def test_book_a_session_from_the_page(web, proposal, hzb):
    start = timezone.localtime() + timezone.timedelta(days=20)
    response = web.post("/beamtime/sessions/new/", {
        "beamline": hzb.pk, "proposal": proposal.pk,
        "start": start.strftime("%Y-%m-%dT08:00"), "end": start.strftime("%Y-%m-%dT16:00"),
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert web.get(response["Location"]).status_code == 200


def test_sheet_page_shows_gate_refusal_then_override(web, client, reviewer, session, accepted_grids, facts):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, "target_count": 0}
    url = f"/beamtime/sessions/{session.pk}/"
    page = web.get(f"{url}?grid={grid.pk}").content.decode()
    assert "Number of targets" in page and "fails" in page
    refused = web.post(url, {"grid": grid.pk})
    assert refused.status_code == 200
    assert "Number of targets" in refused.content.decode()
    client.force_login(reviewer)
    admitted = client.post(url, {"grid": grid.pk, "override_reason": "rare phenotype"})
    assert admitted.status_code == 302
    page = client.get(url).content.decode()
    assert "rare phenotype" in page and "override" in page


def test_shipment_page_and_manifest(web, session, member, accepted_grids, facts):
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    response = web.post(f"/beamtime/sessions/{session.pk}/shipments/new/", {"dewar": "CX-1", "courier": "DHL"})
    assert response.status_code == 302
    page = web.get(response["Location"]).content.decode()
    assert accepted_grids[0].barcode in page and "data:image/svg+xml" in page
    shipment_id = response["Location"].rstrip("/").split("/")[-1]
    pdf = web.get(f"/beamtime/shipments/{shipment_id}/manifest.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert accepted_grids[0].barcode in web.get(f"/beamtime/shipments/{shipment_id}/manifest.csv").content.decode()
    web.post(f"/beamtime/shipments/{shipment_id}/", {"status": "shipped", "tracking_number": "T1"})
    accepted_grids[0].refresh_from_db()
    assert accepted_grids[0].state == "shipped"


def test_target_export_pages(web, session):
    assert web.get(f"/beamtime/sessions/{session.pk}/targets.csv").content.decode().startswith("position,grid,square")
    assert web.get(f"/beamtime/sessions/{session.pk}/targets.json").json()["session"] == session.pk


def test_proposals_policies_and_feeds_pages(web, client, staff, proposal, hzb):
    assert proposal.number in web.get("/beamtime/proposals/").content.decode()
    assert "Ice quality class" in web.get("/beamtime/policies/").content.decode()
    assert web.get(f"/beamtime/policies/{hzb.pk}/edit/").status_code == 404
    assert ".ics" not in web.get("/beamtime/feeds/").content.decode()
    web.post("/beamtime/feeds/", {"lab": proposal.lab_id})
    assert ".ics" in web.get("/beamtime/feeds/").content.decode()
    client.force_login(staff)
    form = client.get(f"/beamtime/policies/{hzb.pk}/edit/")
    assert form.status_code == 200
    saved = client.post(f"/beamtime/policies/{hzb.pk}/edit/", {
        "name": "strict", "description": "",
        "rules-TOTAL_FORMS": "2", "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0", "rules-MAX_NUM_FORMS": "1000",
        "rules-0-metric": "intact_fraction", "rules-0-operator": "ge", "rules-0-threshold": "0.7",
        "rules-1-metric": "focus", "rules-1-operator": "ge", "rules-1-threshold": "1", "rules-1-DELETE": "on",
    })  # fmt: skip
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert [str(r) for r in hzb.quality_policy.rules.all()] == ["Fraction of intact squares ≥ 0.7"]


def test_pages_need_a_login_but_the_feed_does_not(client, db, member, lab):
    assert client.get("/beamtime/").status_code == 302
    feed = services.calendar_feed_for(lab=lab, by=member)
    assert client.get(f"/beamtime/feeds/{feed.token}.ics").status_code == 200

"""Shipments along their lifecycle, manifests (PDF with QR codes, CSV), target lists, iCalendar feeds."""

from __future__ import annotations

import csv
import io
import json

import pytest

from beamtime import exports, quality, services
from beamtime.models import CalendarFeed
from grids import services as grid_services
from lims.errors import ConflictError, PermissionDeniedError
from tests.factories import StorageBoxFactory


@pytest.fixture
def packed(session, member, lab, accepted_grids, facts):
    box = StorageBoxFactory(lab=lab, capacity=4)
    grid_services.grids_move(grids=accepted_grids[:2], box=box, by=member)
    for grid in accepted_grids[:2]:
        services.sample_sheet_add(session=session, grid=grid, by=member)
    return services.shipment_create(session=session, dewar="CX100-07", courier="World Courier", by=member)


def test_shipment_packs_the_sheet_with_box_and_slot(packed, accepted_grids):
    items = list(packed.items.select_related("grid").order_by("slot"))
    assert [i.grid for i in items] == accepted_grids[:2]
    assert [i.slot for i in items] == [1, 2]
    assert items[0].box_name and items[0].box_barcode
    assert packed.status == "prepared"


def test_shipping_receiving_returning_moves_the_grids(packed, member, staff, accepted_grids):
    services.shipment_transition(shipment=packed, to_status="shipped", by=member, tracking_number="1Z999")
    for grid in accepted_grids[:2]:
        grid.refresh_from_db()
        assert grid.state == "shipped"
    with pytest.raises(PermissionDeniedError):
        services.shipment_transition(shipment=packed, to_status="shipped", by=staff)
    services.shipment_transition(shipment=packed, to_status="received", by=staff)
    # One grid got imaged at the beamline; the other returns unimaged to the lab's pool.
    grid_services.grid_transition(grid=accepted_grids[0], to_state="imaged", by=member, cause="dataset")
    shipment = services.shipment_transition(shipment=packed, to_status="returned", by=staff)
    assert shipment.status == "returned" and shipment.tracking_number == "1Z999"
    assert shipment.shipped_at and shipment.received_at and shipment.returned_at
    states = {g.pk: g.state for g in type(accepted_grids[0]).objects.filter(pk__in=[g.pk for g in accepted_grids[:2]])}
    assert states == {accepted_grids[0].pk: "imaged", accepted_grids[1].pk: "accepted"}
    assert list(shipment.transitions.values_list("to_status", flat=True)) == [
        "prepared",
        "shipped",
        "received",
        "returned",
    ]
    with pytest.raises(ConflictError, match="final"):
        services.shipment_transition(shipment=packed, to_status="shipped", by=member)


def test_illegal_shipment_moves_are_refused(packed, staff):
    with pytest.raises(ConflictError, match="can go to: shipped"):
        services.shipment_transition(shipment=packed, to_status="received", by=staff)


def test_manifest_pdf_and_csv(packed, accepted_grids):
    items = list(packed.items.select_related("grid__lot__grid_type"))
    pdf = exports.manifest_pdf(packed, items)
    assert pdf.startswith(b"%PDF")
    assert b"/Image" in pdf or b"/XObject" in pdf  # the QR codes are embedded images
    text = exports.manifest_csv(packed, items)
    assert text.startswith("# Shipment")
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
    assert [r["barcode"] for r in rows] == [g.barcode for g in accepted_grids[:2]]
    assert rows[0]["box"] and rows[0]["slot"] == "1" and rows[0]["qr_payload"] == rows[0]["barcode"]


def test_manifest_endpoints(api, api_for, outsider, packed):
    pdf = api.get(f"/api/v1/shipments/{packed.pk}/manifest/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    csv_response = api.get(f"/api/v1/shipments/{packed.pk}/manifest/?kind=csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    assert api_for(outsider).get(f"/api/v1/shipments/{packed.pk}/manifest/").status_code == 404


def test_shipment_api_create_and_transition(api, api_for, staff, session, member, accepted_grids, facts):
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    created = api.post("/api/v1/shipments/", {"session": session.pk, "dewar": "D1", "courier": "DHL"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [i["barcode"] for i in body["items"]] == [accepted_grids[0].barcode]
    shipped = api.post(
        f"/api/v1/shipments/{body['id']}/transition/", {"status": "shipped", "tracking_number": "JD01"}, format="json"
    )
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    staff_view = api_for(staff).get("/api/v1/shipments/").json()
    assert staff_view["count"] == 1
    received = api_for(staff).post(f"/api/v1/shipments/{body['id']}/transition/", {"status": "received"}, format="json")
    assert received.status_code == 200


def _calibrated_targets(monkeypatch, table):
    monkeypatch.setattr(quality, "grid_targets", lambda grid: table.get(grid.pk, []))


def test_target_list_export_csv_and_json(api, session, member, accepted_grids, facts, monkeypatch):
    grid = accepted_grids[0]
    services.sample_sheet_add(session=session, grid=grid, by=member)
    _calibrated_targets(monkeypatch, {grid.pk: [
        {"label": "infected cell 1", "priority": 1, "square": "C4", "offset_um": [12.5, -3.25]},
        {"label": "control", "priority": 3, "square": "D7", "offset_um": [0.0, 4.0]},
    ]})  # fmt: skip
    body = json.loads(api.get(f"/api/v1/sessions/{session.pk}/targets/").content)
    assert body["session"] == session.pk
    assert body["targets"][0] == {
        "position": 1, "grid": grid.barcode, "grid_id": grid.pk, "square": "C4", "offset_x_um": 12.5,
        "offset_y_um": -3.25, "label": "infected cell 1", "priority": 1,
    }  # fmt: skip
    text = api.get(f"/api/v1/sessions/{session.pk}/targets/?kind=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["position", "grid", "square", "offset_x_um", "offset_y_um", "label", "priority"]
    assert [(r["square"], r["label"], r["priority"]) for r in rows] == [
        ("C4", "infected cell 1", "1"),
        ("D7", "control", "3"),
    ]


def test_ical_feed_needs_its_token_and_lists_the_labs_sessions(client, member, lab, session, proposal):
    feed = services.calendar_feed_for(lab=lab, by=member)
    assert len(feed.token) >= 40
    response = client.get(f"/beamtime/feeds/{feed.token}.ics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    text = response.content.decode()
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.rstrip().endswith("END:VCALENDAR")
    assert f"UID:beamtime-session-{session.pk}@" in text
    assert f"DTSTART:{session.start.astimezone(__import__('datetime').UTC):%Y%m%dT%H%M%SZ}" in text
    assert "STATUS:TENTATIVE" in text
    assert client.get("/beamtime/feeds/not-the-token.ics").status_code == 404
    old = feed.token
    services.calendar_feed_rotate(feed=feed, by=member)
    assert client.get(f"/beamtime/feeds/{old}.ics").status_code == 404


def test_beamline_feed_is_for_staff_and_lists_every_lab(client, staff, outsider, hzb, session):
    with pytest.raises(PermissionDeniedError):
        services.calendar_feed_for(beamline=hzb, by=outsider)
    feed = services.calendar_feed_for(beamline=hzb, by=staff)
    text = client.get(f"/beamtime/feeds/{feed.token}.ics").content.decode()
    assert session.lab.code in text
    assert CalendarFeed.objects.count() == 1


def test_ical_lines_are_folded_and_escaped():
    long = "x" * 200
    folded = exports._fold("DESCRIPTION:" + long)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert exports._ical_escape("a,b;c\nd") == "a\\,b\\;c\\nd"

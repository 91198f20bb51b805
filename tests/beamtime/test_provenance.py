"""GET /api/v1/grids/{id}/provenance/: a grid's whole history in one document, from every app's section."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from beamtime import services as beamtime_services
from characterization import services as characterization_services
from characterization.models import CheckStage, Target
from grids import provenance
from grids import services as grid_services
from tests.characterization.factories import make_check
from tests.config.test_api_lists import _image
from tests.factories import CellLineFactory, MembershipFactory, StorageBoxFactory, make_grids
from tests.vitrification.factories import PLUNGE_PARAMS, PlungerFactory
from vitrification import services as vitrification_services


@pytest.fixture
def travelled(lab, member, session, facts):
    """A grid from its lot through seeding, plunge freezing, a check with an image and a target, a QC
    decision, a sample sheet and a shipment."""
    reviewer = MembershipFactory(lab=lab, role="qc_reviewer").user
    grid = make_grids(lab=lab, user=member, count=1)[0]
    grid_services.grids_move(grids=[grid], box=StorageBoxFactory(lab=lab), by=member)
    grid_services.seeding_record(grids=[grid], cell_line=CellLineFactory(lab=lab), by=member, passage=12)
    vitrification_services.plunge_run_record(
        grids=[grid], instrument=PlungerFactory(lab=lab), by=member, **PLUNGE_PARAMS
    )
    check = make_check(lab=lab, user=member, grid=grid, stage=CheckStage.POST_VITRIFICATION, ice_quality_class=1)
    image = _image(check, member)
    Target.objects.create(image=image, label="cell 1", x=10, y=20, created_by=member)
    characterization_services.qc_decide(lm_check=check, decision="accepted", reasons="even ice", by=reviewer)
    beamtime_services.sample_sheet_add(session=session, grid=grid, by=member)
    shipment = beamtime_services.shipment_create(session=session, dewar="CX100-07", by=member)
    beamtime_services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    return grid


def test_provenance_has_every_section_with_who_and_when(api, travelled, member):
    response = api.get(f"/api/v1/grids/{travelled.pk}/provenance/")
    assert response.status_code == 200
    doc = response.json()
    assert doc["schema"] == provenance.SCHEMA
    assert doc["grid"]["barcode"] == travelled.barcode and doc["grid"]["state"] == "shipped"
    assert doc["lot"]["lot_number"] == travelled.lot.lot_number and doc["lot"]["created_by"] == member.username
    assert doc["storage"]["slot"] is not None
    assert [t["to_state"] for t in doc["lifecycle"]] == [
        "registered", "seeded", "vitrified", "accepted", "scheduled", "shipped",
    ]  # fmt: skip
    assert all(t["by"] and t["at"] for t in doc["lifecycle"])
    assert doc["seedings"][0]["parameters"]["passage"] == 12 and doc["seedings"][0]["operator"] == member.username
    run = doc["vitrification"]
    assert run["kind"] == "plunge" and run["parameters"]["blot_time_s"] == PLUNGE_PARAMS["blot_time_s"]
    assert run["outcome"] == "ok" and run["operator"] == member.username and run["performed_at"]
    assert run["mmcif"]["cryogen_name"] == "ETHANE"
    check = doc["checks"][0]
    assert check["scores"]["ice_quality_class"] == 1 and check["operator"] and check["checked_at"]
    assert check["images"][0]["metrics"] is not None
    assert check["images"][0]["targets"][0]["label"] == "cell 1"
    assert doc["qc_decisions"][0]["decision"] == "accepted" and doc["qc_decisions"][0]["decided_by"]
    gate = doc["gate_evaluations"][0]
    assert gate["passed"] is True and gate["evaluated_by"] == member.username and gate["evaluated_at"]
    sheet = doc["sample_sheets"][0]
    assert sheet["session"]["beamline"]["code"] and sheet["session"]["proposal"]["number"]
    shipment = doc["shipments"][0]
    assert shipment["dewar"] == "CX100-07" and shipment["status"] == "shipped" and shipment["shipped_at"]
    assert [t["to_status"] for t in shipment["transitions"]] == ["prepared", "shipped"]


def test_a_new_grid_has_empty_sections_not_errors(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    doc = api.get(f"/api/v1/grids/{grid.pk}/provenance/").json()
    assert doc["vitrification"] is None and doc["checks"] == [] and doc["shipments"] == []
    assert doc["storage"] is None and len(doc["lifecycle"]) == 1


def test_another_labs_grid_has_no_provenance(api_for, travelled, outsider):
    assert api_for(outsider).get(f"/api/v1/grids/{travelled.pk}/provenance/").status_code == 404


def test_a_section_registered_by_another_app_appears_in_the_document(api, lab, member, monkeypatch):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    # A copy of the registry: the apps' real sections (reconstruction's "datasets" among them) stay registered.
    monkeypatch.setattr(provenance, "_sections", dict(provenance._sections))
    provenance.provenance_section_register("extra_section", lambda g, request=None: [{"grid": g.pk}], order=999)
    doc = api.get(f"/api/v1/grids/{grid.pk}/provenance/").json()
    assert doc["extra_section"] == [{"grid": grid.pk}]
    assert list(doc)[-1] == "extra_section"


def test_provenance_costs_a_bounded_number_of_queries(api, travelled):
    with CaptureQueriesContext(connection) as queries:
        api.get(f"/api/v1/grids/{travelled.pk}/provenance/")
    assert len(queries) <= 25, len(queries)

"""The beamtime API: scheduling, the gate, the sheet (409 with failing rules, overrides), isolation, staff scope."""

from __future__ import annotations

import datetime

import pytest
from django.urls import resolve

from beamtime import services
from tests.beamtime.factories import GOOD_FACTS, at, beamline
from tests.factories import make_grids


def test_reference_endpoints_list_facilities_beamlines_and_policies(api):
    facilities = api.get("/api/v1/facilities/").json()["results"]
    assert {f["short_name"] for f in facilities} >= {"HZB", "ALBA", "Diamond"}
    beamlines = api.get("/api/v1/beamlines/").json()["results"]
    hzb = next(b for b in beamlines if b["code"] == "hzb-u41-txm")
    assert hzb["capacity"] >= 1 and hzb["shift_hours"] == 8
    policy = api.get(f"/api/v1/quality-policies/{hzb['quality_policy']}/").json()
    assert [r["metric"] for r in policy["rules"]][:2] == ["post_vitrification_check", "ice_quality_class"]


def test_a_member_schedules_a_session_through_the_api(api, proposal, hzb):
    start = at(12)
    response = api.post(
        "/api/v1/sessions/",
        {"beamline": hzb.pk, "proposal": proposal.pk, "start": start.isoformat(),
         "end": (start + datetime.timedelta(hours=16)).isoformat()},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["shifts"] == 2 and body["status"] == "planned" and body["lab"] == proposal.lab_id
    clash = api.post(
        "/api/v1/sessions/",
        {"beamline": hzb.pk, "proposal": proposal.pk, "start": start.isoformat(),
         "end": (start + datetime.timedelta(hours=2)).isoformat()},
        format="json",
    )  # fmt: skip
    assert clash.status_code == 409
    assert clash.json()["overlapping_session"] == body["id"]


def test_the_allocation_refusal_carries_the_numbers(api, proposal, hzb):
    proposal.shifts_allocated = 1
    proposal.save()
    start = at(12)
    response = api.post(
        "/api/v1/sessions/",
        {"beamline": hzb.pk, "proposal": proposal.pk, "start": start.isoformat(),
         "end": (start + datetime.timedelta(hours=16)).isoformat()},
        format="json",
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["shifts_allocated"] == 1 and response.json()["shifts_requested"] == 2


def test_gate_url_resolves_and_returns_each_rule(api, accepted_grids, hzb, facts):
    grid = accepted_grids[0]
    assert resolve(f"/api/v1/grids/{grid.pk}/gate/").url_name == "grid-gate-list"
    facts[grid.pk] = {**GOOD_FACTS, "intact_fraction": 0.1}
    body = api.get(f"/api/v1/grids/{grid.pk}/gate/?beamline={hzb.pk}").json()
    assert body["passed"] is False
    assert len(body["rules"]) == 5
    failing = body["failing_rules"]
    assert [(r["metric"], r["value"], r["threshold"], r["passed"]) for r in failing] == [
        ("intact_fraction", 0.1, 0.5, False)
    ]
    assert api.get(f"/api/v1/grids/{grid.pk}/gate/").status_code == 400


def test_gate_of_another_labs_grid_is_404(api_for, outsider, accepted_grids, hzb, facts):
    response = api_for(outsider).get(f"/api/v1/grids/{accepted_grids[0].pk}/gate/?beamline={hzb.pk}")
    assert response.status_code == 404


def test_sheet_add_refuses_with_failing_rules_then_admits_the_override(
    api, api_for, reviewer, session, accepted_grids, facts
):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, "ice_quality_class": 3}
    url = f"/api/v1/sessions/{session.pk}/sample-sheet/"
    refused = api.post(url, {"grid": grid.pk}, format="json")
    assert refused.status_code == 409
    body = refused.json()
    assert [r["metric"] for r in body["failing_rules"]] == ["ice_quality_class"]
    assert body["failing_rules"][0]["value"] == 3.0 and body["failing_rules"][0]["threshold"] == 2.0
    assert "Ice quality class" in body["detail"]
    assert api.post(url, {"grid": grid.pk, "override_reason": "need it"}, format="json").status_code == 403
    admitted = api_for(reviewer).post(url, {"grid": grid.pk, "override_reason": "best of the batch"}, format="json")
    assert admitted.status_code == 201, admitted.json()
    entry = admitted.json()
    assert entry["override_reason"] == "best of the batch" and entry["override_by"] == reviewer.username
    assert entry["gate_passed"] is False and entry["grid_state"] == "scheduled"
    sheet = api.get(url).json()
    assert [e["grid_barcode"] for e in sheet] == [grid.barcode]


def test_a_passing_grid_joins_and_leaves_through_the_api(api, session, accepted_grids, facts):
    grid = accepted_grids[0]
    response = api.post(f"/api/v1/sessions/{session.pk}/sample-sheet/", {"grid": grid.pk}, format="json")
    assert response.status_code == 201
    entry_id = response.json()["id"]
    assert api.get(f"/api/v1/sample-sheet-entries/?session={session.pk}").json()["count"] == 1
    assert api.delete(f"/api/v1/sample-sheet-entries/{entry_id}/").status_code == 204
    grid.refresh_from_db()
    assert grid.state == "accepted"


def test_another_labs_grid_cannot_be_put_on_a_sheet(api, session, other_lab, outsider, facts):
    grid = make_grids(lab=other_lab, user=outsider, count=1, state="accepted")[0]
    response = api.post(f"/api/v1/sessions/{session.pk}/sample-sheet/", {"grid": grid.pk}, format="json")
    assert response.status_code == 400


def test_lab_isolation_of_sessions_proposals_and_sheets(api_for, outsider, session, member, accepted_grids, facts):
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    client = api_for(outsider)
    assert client.get("/api/v1/sessions/").json()["count"] == 0
    assert client.get(f"/api/v1/sessions/{session.pk}/").status_code == 404
    assert client.get("/api/v1/proposals/").json()["count"] == 0
    assert client.get("/api/v1/sample-sheet-entries/").json()["count"] == 0
    assert client.post(f"/api/v1/sessions/{session.pk}/sample-sheet/", {"grid": 1}, format="json").status_code == 404


def test_facility_staff_see_sessions_on_their_beamlines_and_their_grids_only(
    api_for, staff, alba_staff, session, member, lab, accepted_grids, facts
):
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    client = api_for(staff)
    sessions = client.get("/api/v1/sessions/").json()
    assert [s["id"] for s in sessions["results"]] == [session.pk]
    assert client.get(f"/api/v1/sessions/{session.pk}/sample-sheet/").status_code == 200
    hzb = beamline()
    # The grid on the sheet is visible to staff through the gate; the lab's other grids are not.
    assert client.get(f"/api/v1/grids/{accepted_grids[0].pk}/gate/?beamline={hzb.pk}").status_code == 200
    assert client.get(f"/api/v1/grids/{accepted_grids[1].pk}/gate/?beamline={hzb.pk}").status_code == 404
    # Staff see the grids on their sheets, and nothing else of the lab; they cannot change them.
    listed = client.get("/api/v1/grids/").json()
    assert [g["id"] for g in listed["results"]] == [accepted_grids[0].pk]
    assert client.get(f"/api/v1/grids/{accepted_grids[0].pk}/").status_code == 200
    assert client.get(f"/api/v1/grids/{accepted_grids[1].pk}/").status_code == 404
    refused = client.post(f"/api/v1/grids/{accepted_grids[0].pk}/discard/", {"reason": "x"}, format="json")
    assert refused.status_code == 404
    assert client.get("/api/v1/seedings/").json()["count"] == 0
    other = api_for(alba_staff)
    assert other.get("/api/v1/sessions/").json()["count"] == 0
    assert other.get(f"/api/v1/sessions/{session.pk}/").status_code == 404


def test_staff_confirm_and_edit_policies_members_cannot(api, api_for, staff, session, hzb):
    assert (
        api.post(f"/api/v1/sessions/{session.pk}/transition/", {"status": "confirmed"}, format="json").status_code
        == 403
    )
    response = api_for(staff).post(f"/api/v1/sessions/{session.pk}/transition/", {"status": "confirmed"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "confirmed"
    bad = api_for(staff).post(f"/api/v1/sessions/{session.pk}/transition/", {"status": "finished"}, format="json")
    assert bad.status_code == 409
    policy_id = hzb.quality_policy.pk
    rules = {"rules": [{"metric": "target_count", "operator": "ge", "threshold": 5}]}
    assert api.patch(f"/api/v1/quality-policies/{policy_id}/", rules, format="json").status_code == 403
    edited = api_for(staff).patch(f"/api/v1/quality-policies/{policy_id}/", rules, format="json")
    assert edited.status_code == 200, edited.json()
    assert [(r["metric"], r["threshold"]) for r in edited.json()["rules"]] == [("target_count", 5.0)]


def test_staff_override_shift_allocation_through_the_api(api_for, staff, proposal, hzb):
    proposal.shifts_allocated = 1
    proposal.save()
    start = at(12)
    response = api_for(staff).post(
        "/api/v1/sessions/",
        {"beamline": hzb.pk, "proposal": proposal.pk, "start": start.isoformat(),
         "end": (start + datetime.timedelta(hours=16)).isoformat(), "override_reason": "beam loss compensation"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["shift_override_reason"] == "beam loss compensation"
    assert response.json()["shift_override_by"] == staff.username


def test_reschedule_through_patch(api, session):
    new_start = at(50)
    response = api.patch(
        f"/api/v1/sessions/{session.pk}/",
        {"start": new_start.isoformat(), "end": (new_start + datetime.timedelta(hours=8)).isoformat()},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["shifts"] == 1


@pytest.mark.parametrize("path", ["/api/v1/sessions/", "/api/v1/shipments/", "/api/v1/grids/1/gate/?beamline=1"])
def test_anonymous_requests_are_refused(client, db, path):
    assert client.get(path).status_code in (401, 403)


def test_list_endpoints_cost_a_bounded_number_of_queries(api, member, lab, proposal, accepted_grids, facts,
                                                         django_assert_max_num_queries):  # fmt: skip
    from tests.beamtime.factories import schedule

    for days in (10, 20, 30):
        session = schedule(proposal=proposal, by=member, days=days, hours=8)
        services.sample_sheet_add(session=session, grid=accepted_grids[days // 10], by=member)
        services.shipment_create(session=session, dewar=f"D{days}", by=member)
    for path in ("/api/v1/sessions/", "/api/v1/shipments/", "/api/v1/sample-sheet-entries/", "/api/v1/proposals/"):
        with django_assert_max_num_queries(12):
            assert api.get(path).status_code == 200


def test_a_frozen_sheet_answers_409_to_the_lab_and_accepts_staff(api, api_for, staff, session, accepted_grids, facts):
    from beamtime.models import BeamtimeSession

    BeamtimeSession.objects.filter(pk=session.pk).update(freeze_at=session.start - datetime.timedelta(days=30))
    url = f"/api/v1/sessions/{session.pk}/sample-sheet/"
    refused = api.post(url, {"grid": accepted_grids[0].pk}, format="json")
    assert refused.status_code == 409 and "froze" in refused.json()["detail"]
    assert api_for(staff).post(url, {"grid": accepted_grids[0].pk}, format="json").status_code == 201


def test_local_contact_is_a_facility_staff_member(api, staff, member, session):
    ok = api.patch(f"/api/v1/sessions/{session.pk}/", {"local_contact": staff.username}, format="json")
    assert ok.status_code == 200 and ok.json()["local_contact"] == staff.username
    assert (
        api.patch(f"/api/v1/sessions/{session.pk}/", {"local_contact": member.username}, format="json").status_code
        == 400
    )


def test_the_gate_of_a_non_numeric_grid_id_is_404(api):
    assert api.get("/api/v1/grids/abc/gate/?beamline=1").status_code == 404

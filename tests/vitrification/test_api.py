"""/api/v1/instruments, plunge-runs, hpf-runs: create, list, detail, 409, isolation, bounded queries."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from grids.lifecycle import GridState
from lims.tokens import api_token_create
from tests.factories import make_grids
from tests.vitrification.factories import HPF_PARAMS, PLUNGE_PARAMS, PlungerFactory, state
from vitrification import services
from vitrification.models import GridOutcome, PlungeRun

pytestmark = pytest.mark.django_db


def test_plunge_run_post_vitrifies_the_grids_and_reads_back(api, seeded, plunger):
    response = api.post(
        "/api/v1/plunge-runs/",
        {"grids": [g.pk for g in seeded], "instrument": plunger.pk, "blot_time_s": 6, "humidity_percent": 95},
        format="json",
    )

    assert response.status_code == 201, response.data
    body = response.json()
    assert body["grids"] == sorted(g.pk for g in seeded)
    assert body["blot_time_s"] == 6
    assert body["humidity_percent"] == 95
    assert body["cryogen"] == "ETHANE"
    assert body["instrument_model"] == "FEI VITROBOT MARK IV"
    assert body["mmcif"]["instrument"] == "FEI VITROBOT MARK IV"
    assert {o["outcome"] for o in body["outcomes"]} == {"ok"}
    assert {state(g) for g in seeded} == {GridState.VITRIFIED}


def test_plunge_run_post_takes_every_parameter_and_outcomes(api, seeded, plunger):
    payload = {
        "grids": [g.pk for g in seeded],
        "instrument": plunger.pk,
        **PLUNGE_PARAMS,
        "outcomes": [{"grid": seeded[2].pk, "outcome": "failed", "reason": "ice too thick"}],
        "notes": "HeLa on HZB-2",
    }
    response = api.post("/api/v1/plunge-runs/", payload, format="json")

    assert response.status_code == 201, response.data
    outcomes = {o["grid"]: o for o in response.json()["outcomes"]}
    assert outcomes[seeded[2].pk]["outcome"] == "failed"
    assert outcomes[seeded[2].pk]["reason"] == "ice too thick"
    assert outcomes[seeded[2].pk]["barcode"] == seeded[2].barcode
    assert [state(g) for g in seeded] == [GridState.VITRIFIED, GridState.VITRIFIED, GridState.DISCARDED]


def test_hpf_run_post(api, seeded, hpf):
    response = api.post(
        "/api/v1/hpf-runs/", {"grids": [seeded[0].pk], "instrument": hpf.pk, **HPF_PARAMS}, format="json"
    )
    assert response.status_code == 201, response.data
    assert response.json()["pressure_bar"] == 2100
    assert response.json()["filler"] == "20% BSA"
    assert state(seeded[0]) == GridState.VITRIFIED


def test_a_failed_outcome_without_reason_is_a_validation_error(api, seeded, plunger):
    response = api.post(
        "/api/v1/plunge-runs/",
        {"grids": [seeded[0].pk], "instrument": plunger.pk, "outcomes": [{"grid": seeded[0].pk, "outcome": "failed"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "reason" in str(response.data["outcomes"])
    assert state(seeded[0]) == GridState.SEEDED


def test_an_outcome_for_a_grid_outside_the_run_is_refused(api, seeded, plunger):
    response = api.post(
        "/api/v1/plunge-runs/",
        {
            "grids": [seeded[0].pk],
            "instrument": plunger.pk,
            "outcomes": [{"grid": seeded[1].pk, "outcome": "failed", "reason": "x"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert not PlungeRun.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("humidity_percent", 120, "Humidity must be between 0 and 100 % (the value read was 120)."),
        ("blot_time_s", -1, "Blot time must be between 0 and 30 s (the value read was -1)."),
        ("blot_force", 30, "Blot force must be between -20 and 25 (the value read was 30)."),
        ("chamber_temperature_c", 80, "Chamber temperature must be between -10 and 60 °C (the value read was 80)."),
        ("sample_volume_ul", 0, "Sample volume must be between 0.1 and 20 µL (the value read was 0)."),
        ("wait_time_s", 900, "Wait time must be between 0 and 600 s (the value read was 900)."),
    ],
)
def test_out_of_range_values_answer_400_naming_field_and_range(api, seeded, plunger, field, value, message):
    response = api.post(
        "/api/v1/plunge-runs/",
        {"grids": [g.pk for g in seeded], "instrument": plunger.pk, field: value},
        format="json",
    )
    assert response.status_code == 400
    assert response.data[field] == [message]
    assert not PlungeRun.objects.exists()
    assert {state(g) for g in seeded} == {GridState.SEEDED}


def test_hpf_pressure_out_of_range_answers_400(api, seeded, hpf):
    response = api.post(
        "/api/v1/hpf-runs/", {"grids": [seeded[0].pk], "instrument": hpf.pk, "pressure_bar": 1000}, format="json"
    )
    assert response.status_code == 400
    assert response.data["pressure_bar"] == ["Pressure must be between 1500 and 2500 bar (the value read was 1000)."]


def test_a_registered_grid_answers_409_and_changes_nothing(api, lab, member, seeded, plunger):
    registered = make_grids(lab=lab, user=member, count=1)[0]
    response = api.post(
        "/api/v1/plunge-runs/",
        {"grids": [seeded[0].pk, registered.pk], "instrument": plunger.pk, "humidity_percent": 90},
        format="json",
    )
    assert response.status_code == 409
    assert registered.barcode in response.data["detail"]
    assert "registered grid cannot become vitrified" in response.data["detail"]
    assert not PlungeRun.objects.exists()
    assert not GridOutcome.objects.exists()
    assert state(seeded[0]) == GridState.SEEDED


def test_a_plunge_run_with_an_hpf_instrument_answers_400(api, seeded, hpf):
    response = api.post("/api/v1/plunge-runs/", {"grids": [seeded[0].pk], "instrument": hpf.pk}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "instrument"
    assert "high-pressure freezer" in response.data["detail"]


def test_another_labs_grid_is_an_invalid_pk(api, seeded, plunger, other_lab, outsider):
    foreign = make_grids(lab=other_lab, user=outsider, count=1, state=GridState.SEEDED)[0]
    response = api.post(
        "/api/v1/plunge-runs/", {"grids": [seeded[0].pk, foreign.pk], "instrument": plunger.pk}, format="json"
    )
    assert response.status_code == 400
    assert "Invalid pk" in str(response.data["grids"])
    assert state(foreign) == GridState.SEEDED
    assert state(seeded[0]) == GridState.SEEDED


def test_another_labs_instrument_is_an_invalid_pk(api, seeded, other_lab):
    foreign = PlungerFactory(lab=other_lab)
    response = api.post("/api/v1/plunge-runs/", {"grids": [seeded[0].pk], "instrument": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "Invalid pk" in str(response.data["instrument"])


def test_another_labs_run_answers_404_and_is_not_listed(api_for, outsider, seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    client = api_for(outsider)
    assert client.get(f"/api/v1/plunge-runs/{run.pk}/").status_code == 404
    assert client.get(f"/api/v1/instruments/{plunger.pk}/").status_code == 404
    assert client.get("/api/v1/plunge-runs/").json()["results"] == []
    assert client.get("/api/v1/instruments/").json()["results"] == []


def test_run_detail_shows_parameters_and_outcomes(api, seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:2], instrument=plunger, by=member, **PLUNGE_PARAMS)
    body = api.get(f"/api/v1/plunge-runs/{run.pk}/").json()
    assert body["id"] == run.pk
    assert body["operator"] == member.username
    assert body["blot_side"] == "back"
    assert [o["barcode"] for o in body["outcomes"]] == sorted(g.barcode for g in seeded[:2])


def test_runs_filter_by_grid(api, seeded, plunger, member):
    first = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    services.plunge_run_record(grids=seeded[1:], instrument=plunger, by=member)
    body = api.get("/api/v1/plunge-runs/", {"grid": seeded[0].pk}).json()
    assert [r["id"] for r in body["results"]] == [first.pk]


def test_instrument_create_and_list(api, lab):
    response = api.post(
        "/api/v1/instruments/",
        {"lab": lab.pk, "name": "GP2 north", "kind": "plunger", "model": "LEICA EM GP2"},
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.json()["model_display"] == "Leica EM GP2"
    listed = api.get("/api/v1/instruments/", {"kind": "plunger"}).json()
    assert [i["name"] for i in listed["results"]] == ["GP2 north"]


def test_instrument_model_of_the_wrong_kind_answers_400(api, lab):
    response = api.post(
        "/api/v1/instruments/",
        {"lab": lab.pk, "name": "x", "kind": "hpf", "model": "FEI VITROBOT MARK IV"},
        format="json",
    )
    assert response.status_code == 400
    assert response.data["field"] == "model"


def test_instrument_in_another_lab_cannot_be_created(api, other_lab):
    response = api.post(
        "/api/v1/instruments/",
        {"lab": other_lab.pk, "name": "x", "kind": "hpf", "model": "LEICA EM ICE"},
        format="json",
    )
    assert response.status_code == 400
    assert "Invalid pk" in str(response.data["lab"])


def test_token_auth_works_and_anonymous_is_refused(member, plunger):
    client = APIClient()
    assert client.get("/api/v1/plunge-runs/").status_code in (401, 403)
    _, key = api_token_create(user=member, name="script")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/instruments/").status_code == 200


def _make_runs(lab, user, instrument, n, grids_per_run=3):
    grids = make_grids(lab=lab, user=user, count=n * grids_per_run, state=GridState.SEEDED)
    for i in range(n):
        chunk = grids[i * grids_per_run : (i + 1) * grids_per_run]
        services.plunge_run_record(
            grids=chunk,
            instrument=instrument,
            by=user,
            outcomes=[{"grid": chunk[0].pk, "outcome": "failed", "reason": "bent"}],
        )


def _add_rows(lab, user, plunger, hpf, n):
    """n plunge runs of 3 grids (one failed), n HPF runs and n instruments."""
    _make_runs(lab, user, plunger, n)
    for grid in make_grids(lab=lab, user=user, count=n, state=GridState.SEEDED):
        services.hpf_run_record(grids=[grid], instrument=hpf, by=user, pressure_bar=2050)
    for _ in range(n):
        PlungerFactory(lab=lab)


@pytest.mark.parametrize("endpoint", ["/api/v1/plunge-runs/", "/api/v1/hpf-runs/", "/api/v1/instruments/"])
def test_a_list_page_costs_the_same_queries_whatever_its_size(
    api, lab, member, plunger, hpf, endpoint, django_assert_max_num_queries
):
    _add_rows(lab, member, plunger, hpf, 2)
    with django_assert_max_num_queries(6) as small:
        assert len(api.get(endpoint, {"page_size": 2}).json()["results"]) == 2

    _add_rows(lab, member, plunger, hpf, 10)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = api.get(endpoint, {"page_size": 12})
    assert len(response.json()["results"]) == 12

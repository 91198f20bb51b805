"""Bench pages: instruments, run lists, details and create forms (with grids preselected from the grid list)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from grids.lifecycle import GridState
from tests.factories import make_grids
from tests.vitrification.factories import state
from vitrification import services
from vitrification.models import GridOutcome, HPFRun, Instrument, PlungeRun

pytestmark = pytest.mark.django_db


def plunge_post(seeded, plunger, **extra):
    data = {
        "grids": [g.pk for g in seeded],
        "instrument": plunger.pk,
        "blot_time_s": "8",
        "blot_force": "0",
        "blot_side": "back",
        "humidity_percent": "95",
        "chamber_temperature_c": "22",
        "wait_time_s": "",
        "sample_volume_ul": "3",
        "cryogen": "ETHANE",
        "performed_at": "",
        "notes": "",
    }
    data.update(extra)
    return data


def test_the_form_shows_preselected_grids_checked_and_only_seeded_grids(web, lab, member, seeded, plunger):
    registered = make_grids(lab=lab, user=member, count=1)[0]
    url = reverse("vitrification:plunge-run-create") + f"?grids={seeded[0].pk}&grids={seeded[2].pk}"

    page = web.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert f'value="{seeded[0].pk}" id="grid-{seeded[0].pk}" checked' in html
    assert f'value="{seeded[2].pk}" id="grid-{seeded[2].pk}" checked' in html
    assert f'value="{seeded[1].pk}" id="grid-{seeded[1].pk}">' in html
    assert registered.barcode not in html


def test_the_form_never_offers_another_labs_grids(web, seeded, plunger, other_lab, outsider):
    foreign = make_grids(lab=other_lab, user=outsider, count=1, state=GridState.SEEDED)[0]
    html = web.get(reverse("vitrification:plunge-run-create") + f"?grids={foreign.pk}").content.decode()
    assert foreign.barcode not in html


def test_a_preselected_grid_that_is_not_seeded_is_explained(web, lab, member, plunger):
    registered = make_grids(lab=lab, user=member, count=1)[0]
    html = web.get(reverse("vitrification:plunge-run-create") + f"?grids={registered.pk}").content.decode()
    assert f"{registered.barcode} is registered: only seeded grids can be vitrified" in html


def test_submitting_the_form_vitrifies_the_grids_and_shows_the_run(web, seeded, plunger):
    response = web.post(reverse("vitrification:plunge-run-create"), plunge_post(seeded[:2], plunger), follow=True)

    run = PlungeRun.objects.get()
    assert response.redirect_chain[-1][0] == reverse("vitrification:plunge-run-detail", args=[run.pk])
    assert [state(g) for g in seeded] == [GridState.VITRIFIED, GridState.VITRIFIED, GridState.SEEDED]
    assert run.humidity_percent == 95 and run.blot_side == "back"
    html = response.content.decode()
    assert "2 grid(s) vitrified" in html
    assert seeded[0].barcode in html
    assert "FEI VITROBOT MARK IV" in html


def test_a_failed_grid_is_recorded_from_the_form(web, seeded, plunger):
    data = plunge_post(seeded, plunger, **{f"failed_{seeded[1].pk}": "on", f"reason_{seeded[1].pk}": "torn film"})
    response = web.post(reverse("vitrification:plunge-run-create"), data)

    assert response.status_code == 302
    assert state(seeded[1]) == GridState.DISCARDED
    assert GridOutcome.objects.get(grid=seeded[1]).reason == "torn film"


def test_a_failed_grid_without_reason_re_renders_the_form(web, seeded, plunger):
    data = plunge_post(seeded, plunger, **{f"failed_{seeded[1].pk}": "on"})
    response = web.post(reverse("vitrification:plunge-run-create"), data)

    assert response.status_code == 200
    assert f"Say why {seeded[1].barcode} failed." in response.content.decode()
    assert not PlungeRun.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("humidity_percent", "140", "Humidity must be between 0 and 100 % (the value read was 140)."),
        ("blot_time_s", "45", "Blot time must be between 0 and 30 s (the value read was 45)."),
        ("chamber_temperature_c", "-40", "Chamber temperature must be between -10 and 60 °C (the value read was -40)."),
    ],
)
def test_a_value_out_of_range_shows_the_range_on_the_field_and_saves_nothing(
    web, seeded, plunger, field, value, message
):
    response = web.post(reverse("vitrification:plunge-run-create"), plunge_post(seeded, plunger, **{field: value}))

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert message in response.content.decode()
    assert not PlungeRun.objects.exists()
    assert {state(g) for g in seeded} == {GridState.SEEDED}


def test_a_grid_that_stopped_being_seeded_is_refused_on_the_grids_field(web, lab, member, seeded, plunger):
    services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    response = web.post(reverse("vitrification:plunge-run-create"), plunge_post(seeded, plunger))

    assert response.status_code == 200
    assert response.context["form"].errors["grids"]
    assert PlungeRun.objects.count() == 1
    assert state(seeded[1]) == GridState.SEEDED


def test_hpf_form_records_a_run(web, seeded, hpf):
    data = {
        "grids": [seeded[0].pk],
        "instrument": hpf.pk,
        "pressure_bar": "2100",
        "carrier_type": "type B",
        "cavity_depth_um": "",
        "filler": "1-hexadecene",
    }
    response = web.post(reverse("vitrification:hpf-run-create") + f"?grids={seeded[0].pk}", data)

    run = HPFRun.objects.get()
    assert response.status_code == 302
    assert run.filler == "1-hexadecene"
    assert state(seeded[0]) == GridState.VITRIFIED


def test_hpf_pressure_out_of_range_shows_the_range(web, seeded, hpf):
    data = {"grids": [seeded[0].pk], "instrument": hpf.pk, "pressure_bar": "900"}
    response = web.post(reverse("vitrification:hpf-run-create"), data)
    assert "Pressure must be between 1500 and 2500 bar (the value read was 900)." in response.content.decode()
    assert not HPFRun.objects.exists()


def test_the_plunge_form_only_offers_plunge_freezers(web, plunger, hpf):
    form = web.get(reverse("vitrification:plunge-run-create")).context["form"]
    assert list(form.fields["instrument"].queryset) == [plunger]


def test_run_lists_and_details_render(web, seeded, plunger, hpf, member):
    plunge = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, humidity_percent=90)
    hpf_run = services.hpf_run_record(grids=seeded[1:2], instrument=hpf, by=member, pressure_bar=2100)

    listing = web.get(reverse("vitrification:plunge-run-list"))
    assert listing.status_code == 200 and plunger.name in listing.content.decode()
    assert web.get(reverse("vitrification:plunge-run-list"), {"barcode": seeded[0].barcode}).status_code == 200
    assert web.get(reverse("vitrification:hpf-run-list")).status_code == 200
    detail = web.get(reverse("vitrification:plunge-run-detail", args=[plunge.pk]))
    assert detail.status_code == 200 and "_em_vitrification.cryogen_name" in detail.content.decode()
    assert web.get(reverse("vitrification:hpf-run-detail", args=[hpf_run.pk])).status_code == 200


def test_another_labs_run_page_is_404(client, outsider, seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    client.force_login(outsider)
    assert client.get(reverse("vitrification:plunge-run-detail", args=[run.pk])).status_code == 404


def test_pages_need_a_login(client):
    response = client.get(reverse("vitrification:plunge-run-list"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_instrument_create_page_adds_an_instrument(web, lab):
    response = web.post(
        reverse("vitrification:instrument-create"),
        {"lab": lab.pk, "name": "EM ICE 1", "kind": "hpf", "model": "LEICA EM ICE"},
    )
    assert response.status_code == 302
    assert Instrument.objects.get().get_model_display() == "Leica EM ICE"
    assert "EM ICE 1" in web.get(reverse("vitrification:instrument-list")).content.decode()


def test_instrument_of_the_wrong_model_shows_the_error_on_the_model(web, lab):
    response = web.post(
        reverse("vitrification:instrument-create"),
        {"lab": lab.pk, "name": "x", "kind": "plunger", "model": "LEICA EM HPM100"},
    )
    assert response.status_code == 200
    assert "Leica EM HPM100 is not a plunge freezer" in response.context["form"].errors["model"][0]
    assert not Instrument.objects.exists()


def test_retiring_an_instrument_from_the_list(web, plunger):
    web.post(reverse("vitrification:instrument-list"), {"instrument": plunger.pk, "active": "0"})
    plunger.refresh_from_db()
    assert not plunger.active


def test_the_vitrify_chooser_keeps_the_selection(web, seeded):
    html = web.get(reverse("vitrification:vitrify") + f"?grids={seeded[0].pk}").content.decode()
    assert f"{reverse('vitrification:plunge-run-create')}?grids={seeded[0].pk}" in html
    assert f"{reverse('vitrification:hpf-run-create')}?grids={seeded[0].pk}" in html


def test_the_grid_list_offers_vitrify_selected(web, seeded):
    html = web.get(reverse("grids:grid-list")).content.decode()
    assert f'data-bulk-target="{reverse("vitrification:vitrify")}"' in html


def test_the_grid_page_shows_how_the_grid_was_vitrified(web, seeded, plunger, member):
    run = services.plunge_run_record(
        grids=seeded[:2],
        instrument=plunger,
        by=member,
        outcomes=[{"grid": seeded[1].pk, "outcome": "failed", "reason": "film torn"}],
    )
    ok = web.get(reverse("grids:grid-detail", args=[seeded[0].pk])).content.decode()
    failed = web.get(reverse("grids:grid-detail", args=[seeded[1].pk])).content.decode()
    waiting = web.get(reverse("grids:grid-detail", args=[seeded[2].pk])).content.decode()

    assert reverse("vitrification:plunge-run-detail", args=[run.pk]) in ok
    assert "film torn" in failed
    assert f"{reverse('vitrification:plunge-run-create')}?grids={seeded[2].pk}" in waiting


def test_the_form_starts_from_the_users_last_settings(web, seeded, plunger, member):
    services.plunge_run_record(
        grids=seeded[:1], instrument=plunger, by=member, blot_time_s=7, humidity_percent=88, blot_side="back"
    )
    form = web.get(reverse("vitrification:plunge-run-create")).context["form"]
    assert form["blot_time_s"].value() == 7
    assert form["humidity_percent"].value() == 88
    assert form["blot_side"].value() == "back"
    assert form["instrument"].value() == plunger.pk

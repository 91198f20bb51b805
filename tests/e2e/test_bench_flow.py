"""A bench scientist's morning, in a real browser: lot → grids → seeding → plunge run."""

import pytest

from grids.models import Grid, GridLot
from tests.factories import CellLineFactory, grid_type

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lot_becomes_seeded_then_vitrified_grids_through_the_pages(logged_in, lab, member, shot):
    page = logged_in
    assert "Hello" in page.content()  # the home page greets the person and lists their work

    page.goto("/grids/lots/new/")
    page.select_option("select[name=lab]", str(lab.pk))
    page.select_option("select[name=grid_type]", str(grid_type("HZB-2").pk))
    page.fill("input[name=lot_number]", "E2E-001")
    page.fill("input[name=quantity]", "10")
    page.click("button[type=submit]")
    page.wait_for_url("**/grids/lots/*/")
    page.fill("input[name=count]", "3")
    page.click("button:has-text('Register')")
    page.wait_for_selector("text=Registered 3 grid(s)")
    assert GridLot.objects.get(lot_number="E2E-001").quantity_left == 7
    shot("lot-registered")

    CellLineFactory(lab=lab, name="HeLa-E2E")
    page.goto(f"/grids/?lot={GridLot.objects.get(lot_number='E2E-001').pk}")
    page.check("input[data-select-all]")
    page.click("button:has-text('Seed')")
    page.wait_for_url("**/grids/seedings/new/?grids=*")
    page.select_option("select[name=cell_line]", label="HeLa-E2E")
    page.fill("input[name=passage]", "9")
    page.click("button:has-text('Record seeding')")
    page.wait_for_selector("text=Seeded 3 grid(s)")
    grids = list(Grid.objects.filter(lot__lot_number="E2E-001"))
    assert {g.state for g in grids} == {"seeded"}

    from vitrification.models import Instrument

    instrument = Instrument.objects.create(lab=lab, name="Vitrobot 1", kind="plunger", model="FEI VITROBOT MARK IV")
    query = "&".join(f"grids={g.pk}" for g in grids)
    page.goto(f"/vitrification/plunge-runs/new/?{query}")
    page.select_option("select[name=instrument]", str(instrument.pk))
    page.fill("input[name=blot_time_s]", "4")
    page.fill("input[name=humidity_percent]", "95")
    shot("plunge-run-form")
    page.click("form button[type=submit]")
    page.wait_for_url("**/vitrification/plunge-runs/*/")
    assert {g.state for g in Grid.objects.filter(lot__lot_number="E2E-001")} == {"vitrified"}

    page.goto(f"/grids/{grids[0].pk}/")
    timeline = page.inner_text(".timeline")
    assert "Seeded → Vitrified" in timeline and "Registered → Seeded" in timeline
    shot("grid-timeline")


def test_an_out_of_range_humidity_is_refused_on_the_page_with_its_range(logged_in, lab, member):
    from tests.factories import make_grids
    from vitrification.models import Instrument

    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    instrument = Instrument.objects.create(lab=lab, name="GP2", kind="plunger", model="LEICA EM GP2")
    page = logged_in
    page.goto(f"/vitrification/plunge-runs/new/?grids={grid.pk}")
    page.select_option("select[name=instrument]", str(instrument.pk))
    page.fill("input[name=blot_time_s]", "3")
    page.fill("input[name=humidity_percent]", "140")
    page.click("form button[type=submit]")
    page.wait_for_selector(".error")
    assert "100" in page.inner_text(".has-error") or "100" in page.inner_text(".errors")
    grid.refresh_from_db()
    assert grid.state == "seeded"


def test_the_barcode_box_opens_the_grid_a_scanner_types(logged_in, lab, member):
    from tests.factories import make_grids

    grid = make_grids(lab=lab, user=member, count=2)[1]
    page = logged_in
    page.fill("input[name=q]", grid.barcode)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/grids/{grid.pk}/")
    assert grid.barcode in page.inner_text("h1")

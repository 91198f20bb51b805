import re

from grids.models import Grid, GridLot, Seeding
from tests.factories import CellLineFactory, GridLotFactory, StorageBoxFactory, grid_type, make_grids


def test_scanning_a_barcode_opens_that_grid(web, lab, member):
    grid = make_grids(lab=lab, user=member, count=2)[1]
    response = web.get("/grids/", {"q": grid.barcode.lower()})
    assert response.status_code == 302 and response["Location"] == f"/grids/{grid.pk}/"


def test_the_list_filters_by_state(web, lab, member):
    make_grids(lab=lab, user=member, count=2)
    seeded = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    page = web.get("/grids/", {"state": "seeded"}).content.decode()
    assert seeded.barcode in page
    assert page.count('name="grids" value=') == 1


def test_the_state_filter_is_tick_boxes_that_say_what_is_ticked(web, lab, member):
    """Several states are ticked, not picked with a modifier key; the folded line names them."""
    make_grids(lab=lab, user=member, count=1)
    page = web.get("/grids/").content.decode()
    assert "<summary>Any state</summary>" in page
    assert re.search(r'<input type="checkbox" name="state" value="seeded" id="id_state_\d+">', page)
    page = web.get("/grids/", {"state": ["seeded", "vitrified"]}).content.decode()
    assert "<summary>2 chosen: Seeded, Vitrified</summary>" in page
    assert re.search(r'name="state" value="seeded" id="id_state_\d+" checked>', page)
    assert re.search(r'name="state" value="registered" id="id_state_\d+">', page)
    assert "<summary>Registered</summary>" in web.get("/grids/", {"state": "registered"}).content.decode()


def test_a_filter_value_that_cannot_be_used_is_said_next_to_it(web, lab, member):
    make_grids(lab=lab, user=member, count=2)
    page = web.get("/grids/", {"state": "bogus", "registered_after": "99999-99-99"}).content.decode()
    assert "A filter could not be used" in page
    assert "bogus is not one of the available choices" in page and "Enter a valid date" in page
    assert page.count('name="grids" value=') == 2  # every grid, as the message says
    assert "A filter could not be used" not in web.get("/grids/", {"state": "seeded"}).content.decode()


def test_the_account_menu_holds_the_tokens_import_and_log_out(web, member):
    page = web.get("/grids/").content.decode()
    menu = page[page.index('<details class="menu who">') :]
    menu = menu[: menu.index("</details>")]
    assert member.get_username() in menu
    for what in ("API tokens", "Import from a spreadsheet", "Log out", "Your labs"):
        assert what in menu


def test_another_labs_grid_page_is_404(client, lab, member, outsider):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    client.force_login(outsider)
    assert client.get(f"/grids/{grid.pk}/").status_code == 404
    assert grid.barcode not in client.get("/grids/").content.decode()


def test_receiving_a_lot_and_registering_grids_from_the_pages(web, lab):
    response = web.post(
        "/grids/lots/new/", {"lab": lab.pk, "grid_type": grid_type().pk, "lot_number": "P-1", "quantity": 8}
    )
    lot = GridLot.objects.get(lot_number="P-1")
    assert response["Location"] == f"/grids/lots/{lot.pk}/"
    web.post(f"/grids/lots/{lot.pk}/", {"count": 5})
    lot.refresh_from_db()
    assert lot.quantity_left == 3 and Grid.objects.filter(lot=lot).count() == 5
    too_many = web.post(f"/grids/lots/{lot.pk}/", {"count": 4})
    assert too_many.status_code == 200 and "3 grid(s) left" in too_many.content.decode()


def test_seeding_form_preselects_grids_and_moves_them_to_seeded(web, lab, member):
    grids = make_grids(lab=lab, user=member, count=3)
    line = CellLineFactory(lab=lab)
    form_page = web.get("/grids/seedings/new/", {"grids": [grids[0].pk, grids[1].pk]}).content.decode()
    assert form_page.count("selected") >= 2
    response = web.post(
        "/grids/seedings/new/",
        {"grids": [grids[0].pk, grids[1].pk], "cell_line": line.pk, "density_unit": "cells/mL",
         "temperature_c": 37, "co2_percent": 5},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (
        list(Grid.objects.filter(pk__in=[grids[0].pk, grids[1].pk]).values_list("state", flat=True)) == ["seeded"] * 2
    )


def test_an_out_of_range_seeding_shows_the_range_and_saves_nothing(web, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    line = CellLineFactory(lab=lab)
    response = web.post(
        "/grids/seedings/new/",
        {"grids": [grid.pk], "cell_line": line.pk, "density_unit": "cells/mL", "temperature_c": 80, "co2_percent": 5},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Temperature must be between 4 and 45 °C (the value read was 80)" in page
    assert 'value="80' in page  # what was typed stays in the form
    assert not Seeding.objects.exists()
    grid.refresh_from_db()
    assert grid.state == "registered"


def test_bulk_move_stores_the_selected_grids(web, lab, member):
    box = StorageBoxFactory(lab=lab, capacity=4)
    grids = make_grids(lab=lab, user=member, count=3)
    web.post("/grids/bulk/", {"grids": [g.pk for g in grids], "action": "move", "box": box.pk})
    assert sorted(Grid.objects.filter(box=box).values_list("slot", flat=True)) == [1, 2, 3]


def test_grid_page_shows_the_timeline_and_discards_with_a_reason(web, lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    page = web.get(f"/grids/{grid.pk}/").content.decode()
    assert "Registered → Seeded" in page and "new → Registered" in page
    refused = web.post(f"/grids/{grid.pk}/", {"action": "discard", "reason": ""})
    assert refused.status_code == 200
    web.post(f"/grids/{grid.pk}/", {"action": "discard", "reason": "film broken"})
    grid.refresh_from_db()
    assert grid.state == "discarded"
    assert "film broken" in web.get(f"/grids/{grid.pk}/").content.decode()


def test_editing_notes_shows_in_the_timeline(web, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    web.post(f"/grids/{grid.pk}/", {"action": "notes", "notes": "edge of the box"})
    assert "Edited notes" in web.get(f"/grids/{grid.pk}/").content.decode()


def test_label_sheet_prints_a_qr_per_selected_grid(web, lab, member):
    grids = make_grids(lab=lab, user=member, count=3)
    page = web.get("/grids/labels/", {"grids": [g.pk for g in grids]}).content.decode()
    assert page.count("data:image/svg+xml") == 3 and all(g.barcode in page for g in grids)


def test_pages_render_for_a_member(web, lab, member):
    lot = GridLotFactory(lab=lab, created_by=member)
    box = StorageBoxFactory(lab=lab)
    for url in ["/", "/grids/", "/grids/lots/", f"/grids/lots/{lot.pk}/", "/grids/boxes/", f"/grids/boxes/{box.pk}/",
                "/grids/cell-lines/", "/grids/seedings/", "/grids/seedings/new/", "/labs/", f"/labs/{lab.pk}/"]:  # fmt: skip
        assert web.get(url).status_code == 200, url


def test_malformed_ids_in_a_query_answer_404_or_are_ignored_never_500(web, lab, member):
    make_grids(lab=lab, user=member, count=1)
    assert web.get("/grids/labels/", {"lot": "abc"}).status_code == 200
    assert web.get("/grids/labels/", {"grids": "abc"}).status_code == 404
    assert web.get("/grids/", {"lot": "abc"}).status_code == 200
    assert web.post("/grids/bulk/", {"grids": ["abc"], "action": "move"}).status_code == 404


def test_a_grid_selected_twice_in_a_bulk_move_is_refused_and_nothing_moves(web, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    box = StorageBoxFactory(lab=lab, capacity=4)
    response = web.post("/grids/bulk/", {"grids": [grid.pk, grid.pk], "action": "move", "box": box.pk}, follow=True)
    assert "selected twice" in response.content.decode()
    grid.refresh_from_db()
    assert grid.box_id is None and grid.slot is None

import pytest

from grids.models import Grid
from tests.factories import CellLineFactory, GridLotFactory, StorageBoxFactory, grid_type, make_grids


def test_a_lot_is_created_from_type_lab_number_and_quantity(api, lab):
    response = api.post(
        "/api/v1/grid-lots/",
        {"grid_type": grid_type().pk, "lab": lab.pk, "lot_number": "Q-77", "quantity": 20},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["quantity_left"] == 20 and body["vendor"] == grid_type().vendor


def test_a_lot_for_another_lab_is_refused(api, other_lab):
    response = api.post(
        "/api/v1/grid-lots/",
        {"grid_type": grid_type().pk, "lab": other_lab.pk, "lot_number": "Q-1", "quantity": 5},
        format="json",
    )
    assert response.status_code == 400
    assert "lab" in response.json()


def test_register_grids_returns_them_and_refuses_with_409_when_the_lot_runs_out(api, lab, member):
    lot = GridLotFactory(lab=lab, created_by=member, quantity=5)
    made = api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 4}, format="json")
    assert made.status_code == 201
    assert len(made.json()) == 4 and {g["state"] for g in made.json()} == {"registered"}
    refused = api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 2}, format="json")
    assert refused.status_code == 409
    assert "1 grid(s) left" in refused.json()["detail"]
    assert Grid.objects.filter(lot=lot).count() == 4


def test_grids_filter_by_state_barcode_and_lab(api, lab, member):
    grids = make_grids(lab=lab, user=member, count=3)
    make_grids(lab=lab, user=member, count=2, state="seeded")
    assert api.get("/api/v1/grids/?state=seeded").json()["count"] == 2
    assert api.get(f"/api/v1/grids/?barcode={grids[1].barcode}").json()["results"][0]["id"] == grids[1].pk
    assert api.get(f"/api/v1/grids/?lab={lab.pk}").json()["count"] == 5


def test_another_labs_grid_answers_404_and_is_not_listed(api_for, lab, member, outsider):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    client = api_for(outsider)
    assert client.get(f"/api/v1/grids/{grid.pk}/").status_code == 404
    assert client.get("/api/v1/grids/").json()["count"] == 0
    assert client.post(f"/api/v1/grids/{grid.pk}/discard/", {"reason": "x"}, format="json").status_code == 404
    grid.refresh_from_db()
    assert grid.state == "registered"


def test_discard_takes_a_reason_and_refuses_an_imaged_grid_with_409(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    assert api.post(f"/api/v1/grids/{grid.pk}/discard/", {}, format="json").status_code == 400
    done = api.post(f"/api/v1/grids/{grid.pk}/discard/", {"reason": "cracked film"}, format="json")
    assert done.status_code == 200 and done.json()["state"] == "discarded"
    assert done.json()["transitions"][-1]["reason"] == "cracked film"
    imaged = make_grids(lab=lab, user=member, count=1, state="imaged")[0]
    refused = api.post(f"/api/v1/grids/{imaged.pk}/discard/", {"reason": "x"}, format="json")
    assert refused.status_code == 409
    assert "imaged" in refused.json()["detail"]


def test_seeding_moves_grids_to_seeded_and_refuses_a_seeded_one_with_409(api, lab, member):
    line = CellLineFactory(lab=lab)
    grids = make_grids(lab=lab, user=member, count=2)
    payload = {"grids": [g.pk for g in grids], "cell_line": line.pk, "passage": 8, "density": 3e4,
               "temperature_c": 37, "co2_percent": 5, "fiducial_kind": "gold", "fiducial_size_nm": 100}  # fmt: skip
    made = api.post("/api/v1/seedings/", payload, format="json")
    assert made.status_code == 201, made.json()
    assert set(Grid.objects.filter(pk__in=payload["grids"]).values_list("state", flat=True)) == {"seeded"}
    again = api.post("/api/v1/seedings/", payload, format="json")
    assert again.status_code == 409


def test_seeding_out_of_range_names_the_field_and_range(api, lab, member):
    line = CellLineFactory(lab=lab)
    grid = make_grids(lab=lab, user=member, count=1)[0]
    response = api.post(
        "/api/v1/seedings/", {"grids": [grid.pk], "cell_line": line.pk, "co2_percent": 45}, format="json"
    )
    assert response.status_code == 400
    assert "between 0 and 20 %" in response.json()["co2_percent"][0]
    grid.refresh_from_db()
    assert grid.state == "registered"


def test_seeding_a_grid_of_another_lab_is_refused(api, lab, member, outsider, other_lab):
    line = CellLineFactory(lab=lab)
    foreign = make_grids(lab=other_lab, user=outsider, count=1)[0]
    response = api.post("/api/v1/seedings/", {"grids": [foreign.pk], "cell_line": line.pk}, format="json")
    assert response.status_code == 400
    foreign.refresh_from_db()
    assert foreign.state == "registered"


def test_move_puts_a_grid_in_a_free_slot_and_refuses_a_taken_one(api, lab, member):
    box = StorageBoxFactory(lab=lab, capacity=2)
    a, b = make_grids(lab=lab, user=member, count=2)
    assert api.post(f"/api/v1/grids/{a.pk}/move/", {"box": box.pk, "slot": 2}, format="json").json()["slot"] == 2
    taken = api.post(f"/api/v1/grids/{b.pk}/move/", {"box": box.pk, "slot": 2}, format="json")
    assert taken.status_code == 409 and a.barcode in taken.json()["detail"]


def test_qr_labels_come_as_svg_and_png(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    svg = api.get(f"/api/v1/grids/{grid.pk}/label/")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    png = api.get(f"/api/v1/grids/{grid.pk}/label/?kind=png")
    assert png.content.startswith(b"\x89PNG")


def test_the_png_label_carries_the_qr_matrix_of_the_barcode(lab, member):
    """Read the modules back from the PNG and compare them with the QR code of the barcode text."""
    import io

    import numpy as np
    import segno
    from PIL import Image

    from grids import labels

    grid = make_grids(lab=lab, user=member, count=1)[0]
    image = np.asarray(Image.open(io.BytesIO(labels.qr_png(grid.barcode, scale=8))).convert("L"))
    expected = np.array(segno.make(grid.barcode, error="m", micro=False).matrix, dtype=bool)
    n = expected.shape[0]
    centres = (np.arange(n) + 2) * 8 + 4
    read = image[np.ix_(centres, centres)] < 128
    assert read.shape == expected.shape and np.array_equal(read, expected)
    other = np.array(segno.make(grid.barcode + "X", error="m", micro=False).matrix, dtype=bool)
    assert other.shape != expected.shape or not np.array_equal(read, other)


@pytest.mark.parametrize("page_size", [5, 40])
def test_a_grid_list_page_costs_a_bounded_number_of_queries(api, lab, member, django_assert_max_num_queries, page_size):
    box = StorageBoxFactory(lab=lab, capacity=50)
    grids = make_grids(lab=lab, user=member, count=40)
    from grids import services

    services.grids_move(grids=grids, box=box, by=member)
    with django_assert_max_num_queries(6):
        response = api.get(f"/api/v1/grids/?page_size={page_size}")
    assert len(response.json()["results"]) == page_size


def test_token_auth_works_and_anonymous_is_refused(client, member):
    from rest_framework.test import APIClient

    from lims.tokens import api_token_create

    assert APIClient().get("/api/v1/grids/").status_code in (401, 403)
    _, key = api_token_create(user=member, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/grids/").status_code == 200


def test_grid_types_include_hzb2_and_at_least_four_more(api):
    names = [t["name"] for t in api.get("/api/v1/grid-types/?page_size=100").json()["results"]]
    assert "HZB-2" in names and len(names) >= 5


def test_the_grid_record_shows_its_checks_and_decision(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="vitrified")[0]
    body = api.get(f"/api/v1/grids/{grid.pk}/").json()
    assert body["checks"] == [] and body["qc_decision"] is None
    from characterization import services as qc_services

    check = qc_services.check_create(grid=grid, stage="post_vitrification", by=member, ice_quality_class=1)
    assert api.get(f"/api/v1/grids/{grid.pk}/").json()["checks"][0]["id"] == check.pk


def test_patching_a_grids_state_is_refused_and_changes_nothing(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    response = api.patch(f"/api/v1/grids/{grid.pk}/", {"state": "vitrified", "notes": "x"}, format="json")
    assert response.status_code == 400 and "state" in response.json()
    grid.refresh_from_db()
    assert grid.state == "registered" and grid.notes == ""


def test_patching_notes_answers_the_whole_grid_and_keeps_history(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    response = api.patch(f"/api/v1/grids/{grid.pk}/", {"notes": "cracked rim"}, format="json")
    assert response.status_code == 200
    assert response.json()["notes"] == "cracked rim" and response.json()["barcode"] == grid.barcode
    assert grid.history.count() >= 2


def test_deleting_a_grid_is_not_allowed(api, lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    assert api.delete(f"/api/v1/grids/{grid.pk}/").status_code == 405
    grid.refresh_from_db()


@pytest.mark.parametrize("path", ["/api/v1/grids/", "/api/v1/grids.json", "/api/v1/grids/?format=json"])
def test_the_list_rows_are_what_drfs_generic_walk_of_the_fields_gives(api, lab, member, path):
    """The list serializer builds its rows by hand (issue 10); each must equal DRF's field-by-field answer."""
    from rest_framework import serializers

    from grids.api import GridSerializer
    from grids.selectors import grid_list

    box = StorageBoxFactory(lab=lab)
    grids = make_grids(lab=lab, user=member, count=2)
    Grid.objects.filter(pk=grids[0].pk).update(box=box, slot=3, notes="cracked, see photo")
    response = api.get(path)
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()["results"]}
    request = response.wsgi_request
    from rest_framework.request import Request

    drf_request = Request(request)
    drf_request._request.GET = request.GET
    format_kwarg = "json" if path.endswith(".json") else None
    serializer = GridSerializer(context={"request": drf_request, "format": format_kwarg})
    for grid in grid_list(user=member):
        generic = serializers.ModelSerializer.to_representation(serializer, grid)
        assert rows[grid.pk] == generic
        assert list(rows[grid.pk]) == list(generic)
    assert rows[grids[0].pk]["box_name"] == box.name and rows[grids[1].pk]["box_name"] is None


def test_the_csv_export_rows_are_the_list_rows(api, lab, member):
    make_grids(lab=lab, user=member, count=3)
    listed = api.get("/api/v1/grids/").json()["results"]
    exported = b"".join(api.get("/api/v1/grids/?format=csv").streaming_content).decode().splitlines()
    assert exported[0].split(",") == list(listed[0])
    assert len(exported) == 4 and all("?format=csv" in line for line in exported[1:])

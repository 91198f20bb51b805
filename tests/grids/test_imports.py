"""Bulk import of grids (with lots and boxes) and seedings from CSV and XLSX: dry run, all or nothing."""

from __future__ import annotations

import csv
import io
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook, load_workbook

from grids.models import Grid, GridLot, Seeding, StorageBox
from lims import imports
from tests.factories import CellLineFactory, GridLotFactory, make_grids

GRID_COLUMNS = ["lab", "lot_number", "grid_type", "lot_quantity", "count", "box", "box_capacity"]


def _csv(columns, rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _xlsx(columns, rows) -> bytes:
    book = Workbook()
    book.active.append(columns)
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _run(kind, content, user, *, name="grids.csv", dry_run=False):
    return imports.run_import(kind=imports.import_kind_get(kind), name=name, content=content, by=user, dry_run=dry_run)


def test_a_csv_of_1000_grids_imports_in_one_go(lab, member):
    rows = [[lab.code, "BULK-1", "HZB-2", 1000, 1, "", ""] for _ in range(1000)]
    started = time.perf_counter()
    report = _run("grids", _csv(GRID_COLUMNS, rows), member)
    seconds = time.perf_counter() - started
    assert report.ok and report.applied, report.problems[:3]
    assert Grid.objects.filter(lot__lot_number="BULK-1").count() == 1000
    assert GridLot.objects.get(lot_number="BULK-1").quantity_left == 0
    assert seconds < 120


def test_a_dry_run_lists_every_problem_by_row_and_column_and_saves_nothing(lab, member):
    GridLotFactory(lab=lab, created_by=member, lot_number="SMALL", quantity=2)
    rows = [
        [lab.code, "NEW-1", "HZB-2", 10, 4, "Box A", 8],  # fine
        ["NOPE", "NEW-2", "HZB-2", 10, 1, "", ""],  # row 3: a lab the person is not in
        [lab.code, "NEW-3", "Unobtainium", 10, 1, "", ""],  # row 4: unknown grid type
        [lab.code, "NEW-4", "HZB-2", 10, 0, "", ""],  # row 5: count 0
        [lab.code, "SMALL", "", "", 3, "", ""],  # row 6: the lot has 2 left (the service says so)
        [lab.code, "NEW-5", "", "", 1, "", ""],  # row 7: a new lot needs its grid type
    ]
    report = _run("grids", _csv(GRID_COLUMNS, rows), member, dry_run=True)
    found = {(p.row, p.column) for p in report.problems}
    assert found == {(3, "lab"), (4, "grid_type"), (5, "count"), (6, "count"), (7, "grid_type")}, report.problems
    assert "2 grid(s) left" in next(p.message for p in report.problems if p.row == 6)
    assert not report.applied
    assert not GridLot.objects.filter(lot_number__startswith="NEW").exists()
    assert not StorageBox.objects.exists() and not Grid.objects.exists()


def test_an_import_with_one_bad_row_is_refused_whole(lab, member):
    rows = [[lab.code, "OK-1", "HZB-2", 10, 5, "", ""], [lab.code, "OK-2", "HZB-2", 10, 11, "", ""]]
    report = _run("grids", _csv(GRID_COLUMNS, rows), member)
    assert not report.applied and [(p.row, p.column) for p in report.problems] == [(3, "count")]
    assert not Grid.objects.exists() and not GridLot.objects.exists()


def test_a_clean_dry_run_then_the_import_creates_lots_boxes_and_stores_grids(lab, member):
    rows = [[lab.code, "L-1", "HZB-2", 20, 6, "Box A", 10], [lab.code, "L-1", "", "", 4, "Box A", ""]]
    content = _csv(GRID_COLUMNS, rows)
    assert _run("grids", content, member, dry_run=True).ok and not Grid.objects.exists()
    report = _run("grids", content, member)
    assert report.applied and len(report.done) == 2
    box = StorageBox.objects.get(name="Box A")
    assert sorted(box.grids.values_list("slot", flat=True)) == list(range(1, 11))
    assert GridLot.objects.get(lot_number="L-1").quantity_left == 10


def test_xlsx_imports_like_csv_and_unknown_or_missing_columns_are_named(lab, member):
    report = _run("grids", _xlsx(GRID_COLUMNS, [[lab.code, "X-1", "HZB-2", 5, 5, None, None]]), member, name="g.xlsx")
    assert report.applied and Grid.objects.count() == 5
    bad = _run("grids", _csv(["lab", "lot", "count"], [[lab.code, "X", 1]]), member)
    assert {(p.row, p.column) for p in bad.problems} == {(1, "lot"), (1, "lot_number")}


def test_the_templates_download_and_read_back_with_every_column(web):
    for kind in ("grids", "seedings", "plunge-runs", "hpf-runs"):
        columns = imports.import_kind_get(kind).column_names
        text = web.get(f"/imports/{kind}/template.csv").content.decode()
        assert next(csv.reader(io.StringIO(text))) == columns
        book = load_workbook(io.BytesIO(web.get(f"/imports/{kind}/template.xlsx").content))
        assert [c.value for c in book.worksheets[0][1]] == columns
        assert book["columns"].max_row == len(columns) + 1


def test_seedings_import_groups_rows_into_one_seeding(lab, member):
    grids = make_grids(lab=lab, user=member, count=3)
    CellLineFactory(lab=lab, name="HeLa")
    columns = ["seeding", "grid", "cell_line", "passage", "temperature_c"]
    rows = [["S1", grids[0].barcode, "HeLa", 12, 37], ["S1", grids[1].barcode, "HeLa", "", ""],
            ["", grids[2].barcode, "HeLa", 3, ""]]  # fmt: skip
    report = _run("seedings", _csv(columns, rows), member)
    assert report.applied, report.problems
    assert Seeding.objects.count() == 2
    assert sorted(Seeding.objects.get(passage=12).grids.values_list("pk", flat=True)) == [grids[0].pk, grids[1].pk]
    assert set(Grid.objects.values_list("state", flat=True)) == {"seeded"}


def test_seedings_import_names_a_range_problem_and_an_unknown_grid(lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    CellLineFactory(lab=lab, name="HeLa")
    columns = ["grid", "cell_line", "temperature_c"]
    report = _run("seedings", _csv(columns, [[grid.barcode, "HeLa", 90], ["G-NOPE", "HeLa", 37]]), member)
    assert {(p.row, p.column) for p in report.problems} == {(2, "temperature_c"), (3, "grid")}
    assert Grid.objects.get(pk=grid.pk).state == "registered"


def test_the_import_page_checks_then_imports(web, lab):
    content = _csv(GRID_COLUMNS, [[lab.code, "P-1", "HZB-2", 5, 2, "", ""]])
    check = web.post("/imports/grids/", {"file": SimpleUploadedFile("g.csv", content), "action": "check"})
    assert "are fine" in check.content.decode() and not Grid.objects.exists()
    done = web.post("/imports/grids/", {"file": SimpleUploadedFile("g.csv", content), "action": "import"})
    assert done.status_code == 200 and Grid.objects.count() == 2
    bad = web.post("/imports/grids/", {"file": SimpleUploadedFile("g.csv", content.replace(b"HZB-2", b"??")),
                                       "action": "import"})  # fmt: skip
    page = bad.content.decode()
    assert 'id="problems"' in page and "grid_type" in page and Grid.objects.count() == 2


def test_the_api_dry_run_and_apply(api, lab):
    content = _csv(GRID_COLUMNS, [[lab.code, "A-1", "HZB-2", 5, 3, "", ""]])
    dry = api.post("/api/v1/imports/grids/dry-run/", {"file": SimpleUploadedFile("g.csv", content)})
    assert dry.status_code == 200 and dry.json()["ok"] and not Grid.objects.exists()
    done = api.post("/api/v1/imports/grids/apply/", {"file": SimpleUploadedFile("g.csv", content)})
    assert done.status_code == 201 and done.json()["applied"] and Grid.objects.count() == 3
    again = api.post(
        "/api/v1/imports/grids/apply/", {"file": SimpleUploadedFile("g.csv", content.replace(b",3,", b",9,"))}
    )
    assert again.status_code == 400
    assert again.json()["problems"][0]["row"] == 2 and Grid.objects.count() == 3
    assert api.post("/api/v1/imports/grids/apply/", {"file": SimpleUploadedFile("g.pdf", b"%PDF")}).status_code == 400
    assert api.get("/api/v1/imports/").json()[0]["columns"]
    assert api.get("/api/v1/imports/nothing/").status_code == 404

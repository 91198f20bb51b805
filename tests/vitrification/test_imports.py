"""Bulk import of plunge and HPF runs: rows grouped into runs, each grid with its outcome, all or nothing."""

from __future__ import annotations

import csv
import io

from lims import imports
from tests.factories import make_grids
from tests.vitrification.factories import state
from vitrification.models import HPFRun, PlungeRun


def _csv(columns, rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([columns, *rows])
    return buffer.getvalue().encode()


def _run(kind, content, user, dry_run=False):
    return imports.run_import(
        kind=imports.import_kind_get(kind), name="r.csv", content=content, by=user, dry_run=dry_run
    )


COLUMNS = ["run", "grid", "instrument", "outcome", "reason", "blot_time_s", "humidity_percent", "cryogen"]


def test_plunge_rows_with_one_run_key_are_one_run_with_each_grids_outcome(lab, member, plunger):
    grids = make_grids(lab=lab, user=member, count=3, state="seeded")
    rows = [
        ["R1", grids[0].barcode, plunger.name, "ok", "", 6, 95, "ETHANE"],
        ["R1", grids[1].barcode, plunger.name, "failed", "film broke", "", "", ""],
        ["R2", grids[2].barcode, plunger.name, "", "", 4, 90, "ETHANE-PROPANE"],
    ]
    report = _run("plunge-runs", _csv(COLUMNS, rows), member)
    assert report.applied, report.problems
    first, second = PlungeRun.objects.order_by("pk")
    assert first.blot_time_s == 6 and first.humidity_percent == 95 and second.cryogen == "ETHANE-PROPANE"
    assert [state(g) for g in grids] == ["vitrified", "discarded", "vitrified"]


def test_a_run_import_lists_range_state_and_reason_problems_and_saves_nothing(lab, member, plunger):
    seeded = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    registered = make_grids(lab=lab, user=member, count=1)[0]
    rows = [
        ["R1", seeded.barcode, plunger.name, "ok", "", 6, 150, "ETHANE"],  # humidity out of range
        ["R2", registered.barcode, plunger.name, "ok", "", 6, 95, "ETHANE"],  # not seeded yet
        ["R3", seeded.barcode, "No such plunger", "failed", "", "", "", ""],  # instrument, reason
    ]
    report = _run("plunge-runs", _csv(COLUMNS, rows), member)
    found = {(p.row, p.column) for p in report.problems}
    assert (2, "humidity_percent") in found and (4, "instrument") in found and (4, "reason") in found
    assert any(p.row == 3 for p in report.problems)
    assert not PlungeRun.objects.exists() and state(seeded) == "seeded"


def test_hpf_runs_import_needs_the_pressure(lab, member, hpf):
    grids = make_grids(lab=lab, user=member, count=2, state="seeded")
    columns = ["grid", "instrument", "pressure_bar", "filler"]
    bad = _run("hpf-runs", _csv(columns, [[grids[0].barcode, hpf.name, "", "BSA"]]), member)
    assert [(p.row, p.column) for p in bad.problems] == [(2, "pressure_bar")]
    good = _run("hpf-runs", _csv(columns, [[g.barcode, hpf.name, 2100, "20% BSA"] for g in grids]), member)
    assert good.applied and HPFRun.objects.count() == 2

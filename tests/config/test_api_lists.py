"""Every list endpoint of the /api/v1/ router, discovered from the router: each costs the same number of
queries for 1 row as for 100, answers the common pagination, ordering and search parameters, and
shows only the user's labs.

A new list endpoint fails `test_every_list_endpoint_has_a_row_maker` until a maker for it is added to
MAKERS below (n rows of that resource, visible to `member` of `lab`).
"""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.viewsets import GenericViewSet

from beamtime.models import Beamline, Facility, QualityPolicy, SampleSheetEntry, Shipment, ShipmentGrid
from characterization import services as characterization_services
from characterization.models import CheckImage, MetricsStatus, Target
from config.api_urls import router
from grids import insights
from grids import services as grid_services
from lims import permissions
from tests.beamtime.factories import ProposalFactory, beamline, schedule
from tests.characterization.factories import make_check
from tests.factories import (
    CellLineFactory,
    GridLotFactory,
    LabFactory,
    MembershipFactory,
    StorageBoxFactory,
    make_grids,
)
from tests.vitrification.factories import HPF_PARAMS, PLUNGE_PARAMS, HPFFactory, PlungerFactory
from vitrification import services as vitrification_services

_seq = itertools.count(1)


def _labs(ctx, n):
    for _ in range(n):
        MembershipFactory(lab=LabFactory(), user=ctx["member"], role="member")


def _grid_types(ctx, n):
    from grids.models import GridType

    for _ in range(n):
        GridType.objects.create(name=f"T-{next(_seq)}", vendor="V", material="gold", mesh=200, square_pitch_um=125)


def _lots(ctx, n):
    for _ in range(n):
        GridLotFactory(lab=ctx["lab"], created_by=ctx["member"])


def _grids(ctx, n):
    make_grids(lab=ctx["lab"], user=ctx["member"], count=n)


def _boxes(ctx, n):
    for _ in range(n):
        StorageBoxFactory(lab=ctx["lab"])


def _cell_lines(ctx, n):
    for _ in range(n):
        CellLineFactory(lab=ctx["lab"])


def _seedings(ctx, n):
    cell_line = CellLineFactory(lab=ctx["lab"])
    for grid in make_grids(lab=ctx["lab"], user=ctx["member"], count=n):
        grid_services.seeding_record(grids=[grid], cell_line=cell_line, by=ctx["member"])


def _instruments(ctx, n):
    for _ in range(n):
        PlungerFactory(lab=ctx["lab"])


def _plunge_runs(ctx, n):
    plunger = PlungerFactory(lab=ctx["lab"])
    for grid in make_grids(lab=ctx["lab"], user=ctx["member"], count=n, state="seeded"):
        vitrification_services.plunge_run_record(grids=[grid], instrument=plunger, by=ctx["member"], **PLUNGE_PARAMS)


def _hpf_runs(ctx, n):
    hpf = HPFFactory(lab=ctx["lab"])
    for grid in make_grids(lab=ctx["lab"], user=ctx["member"], count=n, state="seeded"):
        vitrification_services.hpf_run_record(grids=[grid], instrument=hpf, by=ctx["member"], **HPF_PARAMS)


def _checks(ctx, n):
    return [make_check(lab=ctx["lab"], user=ctx["member"]) for _ in range(n)]


def _image(check, user):
    return CheckImage.objects.create(
        lm_check=check, file=f"checks/x{next(_seq)}.tif", original_name="x.tif", sha256=f"{next(_seq):064d}", size_bytes=10,
        format="tiff", width=64, height=64, bit_depth=16, uploaded_by=user, metrics_status=MetricsStatus.DONE,
        calibration={"matrix": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]},
    )  # fmt: skip


def _images(ctx, n):
    check = make_check(lab=ctx["lab"], user=ctx["member"])
    for _ in range(n):
        _image(check, ctx["member"])


def _targets(ctx, n):
    image = _image(make_check(lab=ctx["lab"], user=ctx["member"]), ctx["member"])
    for i in range(n):
        Target.objects.create(image=image, label=f"t{i}", x=i, y=i, created_by=ctx["member"])


def _decisions(ctx, n):
    for check in _checks(ctx, n):
        characterization_services.qc_decide(lm_check=check, decision="accepted", reasons="fine", by=ctx["reviewer"])


def _facilities(ctx, n):
    for _ in range(n):
        i = next(_seq)
        Facility.objects.create(name=f"Facility {i}", short_name=f"F{i}")


def _beamlines(ctx, n):
    facility = beamline().facility
    for _ in range(n):
        i = next(_seq)
        line = Beamline.objects.create(facility=facility, name=f"BL {i}", code=f"bl-{i}", capacity=4, shift_hours=8)
        QualityPolicy.objects.get_or_create(beamline=line, defaults={"name": f"Gate {i}"})


def _proposals(ctx, n):
    for _ in range(n):
        ProposalFactory(lab=ctx["lab"], created_by=ctx["member"], facility=beamline().facility)


def _sessions(ctx, n):
    proposal = ProposalFactory(lab=ctx["lab"], created_by=ctx["member"], shifts_allocated=1000)
    return [schedule(proposal=proposal, by=ctx["member"], days=next(ctx["days"]), hours=8) for _ in range(n)]


def _sheet_entries(ctx, n):
    session = _sessions(ctx, 1)[0]
    for grid in make_grids(lab=ctx["lab"], user=ctx["member"], count=n, state="accepted"):
        SampleSheetEntry.objects.create(
            session=session, grid=grid, position=grid.pk, gate_passed=True, added_by=ctx["member"]
        )


def _shipments(ctx, n):
    session = _sessions(ctx, 1)[0]
    grids = make_grids(lab=ctx["lab"], user=ctx["member"], count=n, state="accepted")
    for grid in grids:
        shipment = Shipment.objects.create(session=session, lab=ctx["lab"], dewar="D1", created_by=ctx["member"])
        ShipmentGrid.objects.create(shipment=shipment, grid=grid, slot=1)


def _datasets(ctx, n):
    from beamtime.models import SampleSheetEntry
    from reconstruction.models import Dataset

    session = _sessions(ctx, 1)[0]
    made = []
    for grid in make_grids(lab=ctx["lab"], user=ctx["member"], count=n, state="shipped"):
        SampleSheetEntry.objects.create(
            session=session, grid=grid, position=SampleSheetEntry.objects.filter(session=session).count() + 1,
            gate_passed=True, added_by=ctx["member"],
        )  # fmt: skip
        made.append(
            Dataset.objects.create(
                lab=ctx["lab"],
                session=session,
                grid=grid,
                name=f"series-{grid.pk}.mrc",
                format="mrc",
                file="reconstruction/x.mrc",
                sha256=f"{grid.pk:064d}",
                size_bytes=1,
                tilts=3,
                rows=4,
                columns=4,
                angles=[-1, 0, 1],
                pixel_size_nm=10,
                status="accepted",
                decided_by=ctx["member"],
                created_by=ctx["member"],
            )  # fmt: skip
        )
    # Written past the services (for speed): the dashboard's summaries are told, as a service would.
    insights.grid_facts_changed(d.grid_id for d in made)
    return made


def _jobs(ctx, n):
    from reconstruction.models import ReconstructionJob

    return [
        ReconstructionJob.objects.create(
            lab=ctx["lab"],
            dataset=dataset,
            method="wbp",
            parameters_key=str(dataset.pk),
            engine_version="t",
            created_by=ctx["member"],
        )  # fmt: skip
        for dataset in _datasets(ctx, n)
    ]


def _volumes(ctx, n):
    from reconstruction.models import Volume

    made = [
        Volume.objects.create(
            job=job,
            lab=ctx["lab"],
            file="reconstruction/v.mrc",
            sha256="0" * 64,
            size_bytes=1,
            depth=4,
            thickness=4,
            width=4,
            voxel_size_nm=10,
            value_min=0,
            value_max=1,
            value_mean=0.5,
        )  # fmt: skip
        for job in _jobs(ctx, n)
    ]
    insights.grid_facts_changed(v.job.dataset.grid_id for v in made)  # past the services, as for datasets
    return made


MAKERS = {
    "dataset": _datasets,
    "reconstruction-job": _jobs,
    "volume": _volumes,
    "lab": _labs,
    "gridtype": _grid_types,
    "gridlot": _lots,
    "grid": _grids,
    "storagebox": _boxes,
    "cellline": _cell_lines,
    "seeding": _seedings,
    "instrument": _instruments,
    "plungerun": _plunge_runs,
    "hpfrun": _hpf_runs,
    "check": _checks,
    "check-image": _images,
    "target": _targets,
    "qc-decision": _decisions,
    "facility": _facilities,
    "beamline": _beamlines,
    "proposal": _proposals,
    "beamtimesession": _sessions,
    "qualitypolicy": _beamlines,
    "samplesheetentry": _sheet_entries,
    "shipment": _shipments,
}

# Lists of records: generic viewsets with a list action. Nested routes answer about one parent record
# (the gate evaluates one grid); plain ViewSets list no records (the import kinds).
LIST_ROUTES = [
    (prefix, basename)
    for prefix, viewset, basename in router.registry
    if "(?P<" not in prefix and hasattr(viewset, "list") and issubclass(viewset, GenericViewSet)
]


def _url(prefix: str) -> str:
    return f"/api/v1/{prefix}/"


def test_every_list_endpoint_has_a_row_maker():
    missing = [basename for _, basename in LIST_ROUTES if basename not in MAKERS]
    assert not missing, f"add a row maker to MAKERS for: {missing}"


@pytest.fixture
def ctx(lab, member):
    reviewer = MembershipFactory(lab=lab, role="qc_reviewer").user
    return {"lab": lab, "member": member, "reviewer": reviewer, "days": itertools.count(10)}


def _count(api, url, user):
    permissions.forget_lab_roles(user)  # a new request would read the new memberships
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, {"page_size": 200})
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.json()["count"]


@pytest.mark.parametrize(("prefix", "basename"), LIST_ROUTES, ids=[b for _, b in LIST_ROUTES])
def test_a_list_costs_the_same_queries_for_one_row_and_for_a_hundred(api, ctx, prefix, basename):
    make = MAKERS[basename]
    make(ctx, 1)
    _count(api, _url(prefix), ctx["member"])  # first request of the process fills caches (content types)
    few, rows_before = _count(api, _url(prefix), ctx["member"])
    make(ctx, 99)
    many, rows_after = _count(api, _url(prefix), ctx["member"])
    assert rows_after >= rows_before + 99
    assert many == few, f"{prefix}: {few} queries for {rows_before} row(s), {many} for {rows_after}"


@pytest.mark.parametrize(("prefix", "basename"), LIST_ROUTES, ids=[b for _, b in LIST_ROUTES])
def test_every_list_pages_orders_and_searches_the_same_way(api, ctx, prefix, basename):
    MAKERS[basename](ctx, 3)
    page = api.get(_url(prefix), {"page_size": 2}).json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert len(page["results"]) == 2 and page["count"] >= 3 and "page_size=2" in page["next"]
    capped = api.get(_url(prefix), {"page_size": 100000})
    assert capped.status_code == 200
    viewset = dict((p, v) for p, v, _ in router.registry)[prefix]
    field = viewset.ordering_fields[0]
    ascending = api.get(_url(prefix), {"ordering": field}).json()["results"]
    descending = api.get(_url(prefix), {"ordering": f"-{field}"}).json()["results"]
    assert [r["id"] for r in ascending] != [r["id"] for r in descending] or len(
        {str(r.get(field)) for r in ascending}
    ) <= 1
    assert api.get(_url(prefix), {"search": "no-such-text-anywhere-zz"}).json()["count"] == 0


LAB_SCOPED = ["gridlot", "grid", "storagebox", "cellline", "seeding", "instrument", "plungerun", "hpfrun", "check",
              "check-image", "target", "qc-decision", "proposal", "beamtimesession", "samplesheetentry", "shipment"]  # fmt: skip


@pytest.mark.parametrize("basename", LAB_SCOPED)
def test_a_list_shows_nothing_of_another_lab(api_for, ctx, outsider, basename):
    MAKERS[basename](ctx, 2)
    prefix = next(p for p, b in LIST_ROUTES if b == basename)
    assert api_for(outsider).get(_url(prefix)).json()["count"] == 0


def test_a_refused_write_answers_field_by_field_and_a_conflict_with_a_reason(api, lab, member):
    bad = api.post("/api/v1/grid-lots/", {"lab": lab.pk, "quantity": 0}, format="json")
    assert bad.status_code == 400
    body = bad.json()
    assert {"grid_type", "lot_number", "quantity"} <= set(body)
    assert all(isinstance(messages, list) and messages for messages in body.values())
    lot = GridLotFactory(lab=lab, created_by=member, quantity=1)
    conflict = api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 2}, format="json")
    assert conflict.status_code == 409
    assert "left" in conflict.json()["detail"]


def test_filters_are_the_same_on_the_page_and_in_the_api(api, web, lab, member):
    make_grids(lab=lab, user=member, count=2, state="seeded")
    make_grids(lab=lab, user=member, count=3)
    api_rows = api.get("/api/v1/grids/", {"state": "seeded"}).json()["count"]
    page = web.get("/grids/", {"state": "seeded"})
    assert api_rows == 2 and len(page.context["page"].object_list) == 2


def test_an_invalid_filter_value_is_a_400_naming_the_filter(api):
    response = api.get("/api/v1/grids/", {"state": "frozen-solid"})
    assert response.status_code == 400
    assert "state" in response.json()


def test_one_lists_filter_values_never_carry_over_to_the_next_request(api, lab, member, other_lab):
    # The API's filter classes and their form class are built once per process (lims.api_base); each request
    # must still be validated and filtered on its own values alone.
    make_grids(lab=lab, user=member, count=2, state="seeded")
    make_grids(lab=lab, user=member, count=3)
    assert api.get("/api/v1/grids/", {"state": "seeded"}).json()["count"] == 2
    assert api.get("/api/v1/grids/", {"lab": "not-a-number"}).status_code == 400
    assert api.get("/api/v1/grids/").json()["count"] == 5
    assert api.get("/api/v1/grids/", {"lab": other_lab.pk}).json()["count"] == 0
    assert api.get("/api/v1/grids/", {"lab": lab.pk, "state": "registered"}).json()["count"] == 3
    assert api.get("/api/v1/grids/", {"state": "frozen-solid"}).status_code == 400
    assert api.get("/api/v1/grids/", {"lab": lab.pk}).json()["count"] == 5


def _csv(response) -> list[dict]:
    import csv
    import io

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv") and response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(("prefix", "basename"), LIST_ROUTES, ids=[b for _, b in LIST_ROUTES])
def test_every_list_exports_its_rows_as_streamed_csv(api, ctx, prefix, basename):
    MAKERS[basename](ctx, 3)
    permissions.forget_lab_roles(ctx["member"])
    listed = api.get(_url(prefix), {"page_size": 500}).json()
    rows = _csv(api.get(_url(prefix), {"format": "csv"}))
    assert len(rows) == listed["count"]
    assert sorted(int(r["id"]) for r in rows) == sorted(r["id"] for r in listed["results"])
    assert set(rows[0]) == set(listed["results"][0])


def test_csv_export_takes_the_list_filters_and_ordering_and_is_not_paginated(api, lab, member):
    make_grids(lab=lab, user=member, count=3, state="seeded")
    make_grids(lab=lab, user=member, count=60)
    rows = _csv(api.get("/api/v1/grids/", {"format": "csv", "state": "registered", "ordering": "-barcode"}))
    assert len(rows) == 60 and {r["state"] for r in rows} == {"registered"}
    assert [r["barcode"] for r in rows] == sorted((r["barcode"] for r in rows), reverse=True)


def test_csv_export_queries_grow_with_chunks_not_rows(api, lab, member, settings):
    from lims import csv_export

    make_grids(lab=lab, user=member, count=30)
    old = csv_export.CHUNK
    csv_export.CHUNK = 10
    try:
        with CaptureQueriesContext(connection) as queries:
            rows = _csv(api.get("/api/v1/seedings/", {"format": "csv"}))
            rows = _csv(api.get("/api/v1/grids/", {"format": "csv"}))
    finally:
        csv_export.CHUNK = old
    assert len(rows) == 30 and len(queries) < 30


def test_every_list_viewset_can_export_csv():
    from lims.csv_export import CSVExportMixin

    viewsets = dict((p, v) for p, v, _ in router.registry)
    assert all(issubclass(viewsets[p], CSVExportMixin) for p, _ in LIST_ROUTES)


def test_the_apis_filter_variant_leaves_the_pages_filter_class_as_it_was(db):
    import django_filters

    from grids.models import Grid
    from lims.api_base import _filtering_by_id

    class SlotFilter(django_filters.FilterSet):
        slot = django_filters.NumberFilter()
        lot = django_filters.ModelChoiceFilter(queryset=Grid.objects.none())

        class Meta:
            model = Grid
            fields = ["slot", "lot"]

    by_id = _filtering_by_id(SlotFilter)
    assert by_id.base_filters["slot"].extra["max_value"] == 2**63 - 1
    assert isinstance(by_id.base_filters["lot"], django_filters.NumberFilter)
    assert "max_value" not in SlotFilter.base_filters["slot"].extra  # the page's class is untouched
    assert isinstance(SlotFilter.base_filters["lot"], django_filters.ModelChoiceFilter)


def test_a_method_filter_runs_on_its_own_requests_filter_set(api, lab, member):
    # The API's filter sets copy their filters one level deep (lims.api_base); a method filter (`q`) must still
    # call its own request's filter set, with that request's value.
    grids = make_grids(lab=lab, user=member, count=3)
    from grids.models import Grid

    Grid.objects.filter(pk=grids[0].pk).update(notes="cracked rim")
    Grid.objects.filter(pk=grids[1].pk).update(notes="thin ice")
    assert [g["id"] for g in api.get("/api/v1/grids/", {"q": "cracked"}).json()["results"]] == [grids[0].pk]
    assert [g["id"] for g in api.get("/api/v1/grids/", {"q": "thin"}).json()["results"]] == [grids[1].pk]
    assert api.get("/api/v1/grids/").json()["count"] == 3

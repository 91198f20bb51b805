"""The permission matrix: every page and API endpoint of the URL configuration (with and without format
suffixes), for every role, reading and writing.

The URLs come from the URL configuration and the API router (tests/lims/urlmap.py), never from a hand
list; what each role may do is the table RULES below, keyed by URL name ("api:" before API names). A
URL without a rule fails `test_every_url_has_a_rule`: a new page or endpoint cannot ship without a
decision on who may use it.

Reading: the status each role gets for a GET (LOGIN: a redirect to the login page for pages, 401 for
the API). Another lab gets 404, never 403, so ids leak nothing; a GET changes nothing in the database.
Writing: every write method the URL accepts (POST for pages; POST/PUT/PATCH/DELETE as the router maps
them), with an empty body. A role outside the rule's `writers` is refused (LOGIN for anonymous, 404
where the record is hidden from it, otherwise a 3xx/4xx or a form shown again) and the database is
unchanged afterwards: every row of every table is compared. Writers' requests run in a transaction
that is rolled back; they must not fail with a server error either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.urls import reverse

from tests.lims import urlmap
from tests.lims.urlmap import ROLES

LOGIN = "login"
LAB_ROLES = ("member", "reviewer", "lab_admin", "superuser")
SIGNED_IN = (*LAB_ROLES, "other_lab", "staff_used", "staff_unused")
ON_THE_SHEET = (*LAB_ROLES, "staff_used")  # staff of the beamline the lab uses see its sessions and their grids
STAFF = ("staff_used", "superuser")


def sees(ok=LAB_ROLES) -> dict:
    """The read table: 200 for `ok`, 404 for every other signed-in role, LOGIN for anonymous."""
    table = {role: (200 if role in ok else 404) for role in ROLES}
    table["anonymous"] = LOGIN
    return table


@dataclass(frozen=True)
class Rule:
    visible: dict  # role -> what a GET answers (for POST-only URLs: whether the record is visible)
    get: bool = True  # False: the URL serves no GET (405 for signed-in roles)
    writers: tuple = ()  # roles whose writes may succeed
    ids: dict = field(default_factory=dict)  # URL keyword -> value or callable(world)
    query: dict = field(default_factory=dict)  # query parameters a GET needs
    scoped_list: bool = False  # an API list of lab records: empty for other labs


def rule(visible=None, *, writers=(), get=True, query=None, scoped=False, **ids) -> Rule:
    return Rule(visible or sees(SIGNED_IN), get, tuple(writers), ids, query or {}, scoped)


# --- where the ids come from: lab A's records (tests/lims/urlmap.py builds them) ------------------------------------------


def _grid(world):
    """A grid on lab A's session's sample sheet (staff of that beamline may see it)."""
    from beamtime.models import SampleSheetEntry

    return SampleSheetEntry.objects.filter(session__lab=world.lab).order_by("pk").first().grid_id


def _session(world):
    from beamtime.models import SampleSheetEntry

    return SampleSheetEntry.objects.filter(session__lab=world.lab).order_by("pk").first().session_id


def _entry(world):
    from beamtime.models import SampleSheetEntry

    return SampleSheetEntry.objects.filter(session_id=_session(world)).order_by("pk").first().pk


def first(model_path):
    def pick(world):
        from django.apps import apps

        return apps.get_model(model_path).objects.order_by("pk").first().pk

    return pick


def _hzb(world):
    from beamtime.models import Beamline

    return Beamline.objects.get(code="hzb-u41-txm").pk


def _feed_token(world):
    from beamtime.models import CalendarFeed

    return CalendarFeed.objects.get(lab=world.lab).token


def _image(world):
    from characterization.models import CheckImage

    return CheckImage.objects.exclude(preview="").order_by("pk").first().pk


def _import_slug(world):
    from lims import imports

    return imports.import_kinds()[0].slug


def _chart(part):
    """The first chart of the QC dashboard's first panel (as the lab admin sees it)."""

    def pick(world):
        from grids import insights

        query = insights.query_build(lab_ids=insights.dashboard_lab_ids(world.users["lab_admin"]), values={})
        panel, charts = insights.answer_get(query, params={}).charts[0]
        return panel.key if part == "panel" else charts[0].key

    return pick


DATASET = first("reconstruction.Dataset")
JOB = first("reconstruction.ReconstructionJob")
VOLUME = first("reconstruction.Volume")
UPLOAD = first("reconstruction.DatasetUpload")
# The QC dashboard: reviewers and lab admins of any lab (another lab's admin sees their own lab's);
# members and facility staff are refused (403: the page exists for everyone, the data does not).
DASHBOARD = {**sees(SIGNED_IN), "member": 403, "staff_used": 403, "staff_unused": 403}

# Values for URL keywords by name; a rule's ids override them. An API detail `pk` is the first record
# of the viewset's own queryset as the superuser sees it, so a new viewset needs no entry here.
KWARGS = {
    "format": "json", "index": 0, "grid_pk": _grid, "entry_pk": _entry, "beamline_pk": _hzb, "token": _feed_token,
    "slug": _import_slug, "ext": "csv", "name": "sirt", "plane": "xy", "panel": _chart("panel"),
    "chart": _chart("chart"),
}  # fmt: skip

CHECK = first("characterization.Check")

RULES: dict[str, Rule] = {
    # --- project pages
    "dashboard": rule(),
    "login": rule(dict.fromkeys(ROLES, 200), writers=ROLES),
    "logout": rule({**dict.fromkeys(ROLES, 302), "anonymous": LOGIN}, get=False, writers=ROLES),
    "lab-index": rule(writers=SIGNED_IN),
    "lab-page": rule(sees(), writers=("lab_admin", "superuser"), pk=lambda w: w.lab.pk),
    "api-tokens": rule(writers=SIGNED_IN),  # a person's own tokens
    "api-token-revoke": rule(sees(("member",)), get=False, writers=("member",), pk=first("lims.ApiToken")),
    "import-index": rule(),
    "import-run": rule(writers=SIGNED_IN),  # rows go to the labs the person belongs to
    "import-template-file": rule(),
    # --- grids
    "grids:grid-list": rule(),
    "grids:grid-bulk": rule(get=False, writers=LAB_ROLES),
    "grids:label-sheet": rule(),
    "grids:grid-detail": rule(sees(ON_THE_SHEET), writers=LAB_ROLES, pk=_grid),
    "grids:grid-label": rule(sees(ON_THE_SHEET), pk=_grid),
    "grids:lot-list": rule(),
    "grids:lot-create": rule(writers=LAB_ROLES),
    "grids:lot-detail": rule(sees(), writers=LAB_ROLES, pk=first("grids.GridLot")),
    "grids:box-list": rule(writers=LAB_ROLES),
    "grids:box-detail": rule(sees(), writers=LAB_ROLES, pk=first("grids.StorageBox")),
    "grids:cellline-list": rule(writers=LAB_ROLES),
    "grids:seeding-list": rule(),
    "grids:seeding-create": rule(writers=LAB_ROLES),
    "grids:seeding-detail": rule(sees(), pk=first("grids.Seeding")),
    "grids:qc-dashboard": rule(DASHBOARD),
    "grids:qc-dashboard-csv": rule(DASHBOARD),
    # --- vitrification
    "vitrification:vitrify": rule(),
    "vitrification:instrument-list": rule(),
    "vitrification:instrument-create": rule(writers=LAB_ROLES),
    "vitrification:plunge-run-list": rule(),
    "vitrification:plunge-run-create": rule(writers=LAB_ROLES),
    "vitrification:plunge-run-detail": rule(sees(), pk=first("vitrification.PlungeRun")),
    "vitrification:hpf-run-list": rule(),
    "vitrification:hpf-run-create": rule(writers=LAB_ROLES),
    "vitrification:hpf-run-detail": rule(sees(), pk=first("vitrification.HPFRun")),
    # --- characterization
    "characterization:check-list": rule(),
    "characterization:check-create": rule(sees(), writers=LAB_ROLES, grid_pk=_grid),
    "characterization:check-detail": rule(sees(), pk=CHECK),
    "characterization:check-edit": rule(sees(), writers=LAB_ROLES, pk=CHECK),
    "characterization:check-upload": rule(sees(), get=False, writers=LAB_ROLES, pk=CHECK),
    "characterization:check-decide": rule(sees(), get=False, writers=LAB_ROLES, pk=CHECK),
    "characterization:image-detail": rule(sees(), writers=LAB_ROLES, pk=_image),
    "characterization:image-original": rule(sees(), pk=_image),
    "characterization:image-preview": rule(sees(), pk=_image),
    "characterization:image-thumbnail": rule(sees(), pk=_image),
    "characterization:image-channel": rule(sees(), pk=_image),
    "characterization:review-queue": rule(),
    # --- beamtime
    "beamtime:calendar": rule(),
    "beamtime:session-list": rule(),
    "beamtime:session-create": rule(writers=SIGNED_IN),
    "beamtime:session-detail": rule(sees(ON_THE_SHEET), writers=ON_THE_SHEET, pk=_session),
    "beamtime:session-transition": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=_session),
    "beamtime:sheet-remove": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=_session),
    "beamtime:session-targets": rule(sees(ON_THE_SHEET), pk=_session, kind="csv"),
    "beamtime:shipment-create": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=_session),
    "beamtime:shipment-detail": rule(sees(ON_THE_SHEET), writers=ON_THE_SHEET, pk=first("beamtime.Shipment")),
    "beamtime:shipment-manifest": rule(sees(ON_THE_SHEET), pk=first("beamtime.Shipment"), kind="csv"),
    "beamtime:proposal-list": rule(writers=SIGNED_IN),
    "beamtime:policy-list": rule(),
    "beamtime:policy-edit": rule(sees(STAFF), writers=STAFF),
    "beamtime:feed-list": rule(writers=SIGNED_IN),
    "beamtime:feed": rule(dict.fromkeys(ROLES, 200)),
    # --- reconstruction (the lab's datasets, and those of sessions on the staff's beamlines)
    "reconstruction:index": rule(),
    "reconstruction:guide": rule(),
    "reconstruction:guide-picture": rule(),
    "reconstruction:dataset-add": rule(writers=SIGNED_IN),  # the form offers only the person's sheet entries
    "reconstruction:dataset-detail": rule(sees(ON_THE_SHEET), pk=DATASET),
    "reconstruction:dataset-decide": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=DATASET),
    "reconstruction:job-create": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=DATASET),
    "reconstruction:dataset-montage": rule(sees(ON_THE_SHEET), pk=DATASET),
    "reconstruction:dataset-ro-crate": rule(sees(ON_THE_SHEET), pk=DATASET),
    "reconstruction:job-detail": rule(sees(ON_THE_SHEET), pk=JOB),
    "reconstruction:job-cancel": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=JOB),
    "reconstruction:volume-detail": rule(sees(ON_THE_SHEET), pk=VOLUME),
    "reconstruction:volume-download": rule(sees(ON_THE_SHEET), pk=VOLUME),
    "reconstruction:volume-ro-crate": rule(sees(ON_THE_SHEET), pk=VOLUME),
    "reconstruction:volume-preview": rule(sees(ON_THE_SHEET), pk=VOLUME),
    "reconstruction:volume-slice": rule(sees(ON_THE_SHEET), pk=VOLUME),
    # --- API: project
    "api:api-root": rule(),
    "api:api-schema": rule(),
    "api:api-docs": rule(),
    "api:api-redoc": rule(),
    "api:import-list": rule(),
    "api:import-detail": rule(),
    "api:import-template": rule(),
    "api:import-dry-run": rule(get=False, writers=SIGNED_IN),
    "api:import-apply": rule(get=False, writers=SIGNED_IN),
    "api:lab-list": rule(writers=SIGNED_IN),
    "api:lab-detail": rule(sees()),
    "api:lab-members": rule(sees(), writers=("lab_admin", "superuser")),
    # --- API: grids
    "api:gridtype-list": rule(),
    "api:gridtype-detail": rule(),
    "api:gridlot-list": rule(writers=SIGNED_IN, scoped=True),
    "api:gridlot-detail": rule(sees()),
    "api:gridlot-register-grids": rule(sees(), get=False, writers=LAB_ROLES),
    "api:grid-list": rule(scoped=True),
    "api:grid-detail": rule(sees(ON_THE_SHEET), writers=LAB_ROLES, pk=_grid),
    "api:grid-discard": rule(sees(ON_THE_SHEET), get=False, writers=LAB_ROLES, pk=_grid),
    "api:grid-label": rule(sees(ON_THE_SHEET), pk=_grid),
    "api:grid-provenance": rule(sees(ON_THE_SHEET), pk=_grid),
    "api:grid-move": rule(sees(ON_THE_SHEET), get=False, writers=LAB_ROLES, pk=_grid),
    "api:grid-gate-list": rule(sees(ON_THE_SHEET), query={"beamline": _hzb}),
    "api:storagebox-list": rule(writers=SIGNED_IN, scoped=True),
    "api:storagebox-detail": rule(sees()),
    "api:storagebox-label": rule(sees()),
    "api:cellline-list": rule(writers=SIGNED_IN, scoped=True),
    "api:cellline-detail": rule(sees()),
    "api:seeding-list": rule(writers=SIGNED_IN, scoped=True),
    "api:seeding-detail": rule(sees()),
    # --- API: vitrification
    "api:instrument-list": rule(writers=SIGNED_IN, scoped=True),
    "api:instrument-detail": rule(sees()),
    "api:plungerun-list": rule(writers=SIGNED_IN, scoped=True),
    "api:plungerun-detail": rule(sees()),
    "api:plungerun-mmcif": rule(sees()),
    "api:hpfrun-list": rule(writers=SIGNED_IN, scoped=True),
    "api:hpfrun-detail": rule(sees()),
    "api:hpfrun-mmcif": rule(sees()),
    # --- API: characterization
    "api:check-list": rule(writers=SIGNED_IN, scoped=True),
    "api:check-review-queue": rule(scoped=True),
    "api:check-detail": rule(sees(), writers=LAB_ROLES),
    "api:check-image-list": rule(writers=SIGNED_IN, scoped=True),
    "api:check-image-detail": rule(sees(), writers=LAB_ROLES, pk=_image),
    "api:check-image-calibrate": rule(sees(), get=False, writers=LAB_ROLES, pk=_image),
    "api:check-image-channel": rule(sees(), pk=_image),
    "api:check-image-original": rule(sees(), pk=_image),
    "api:check-image-preview": rule(sees(), pk=_image),
    "api:check-image-recompute": rule(sees(), get=False, writers=LAB_ROLES, pk=_image),
    "api:check-image-thumbnail": rule(sees(), pk=_image),
    "api:target-list": rule(writers=SIGNED_IN, scoped=True),
    "api:target-detail": rule(sees(), writers=LAB_ROLES),
    "api:qc-decision-list": rule(writers=SIGNED_IN, scoped=True),
    "api:qc-decision-detail": rule(sees()),
    # --- API: beamtime
    "api:facility-list": rule(),
    "api:facility-detail": rule(),
    "api:beamline-list": rule(),
    "api:beamline-detail": rule(),
    "api:proposal-list": rule(writers=SIGNED_IN),
    "api:proposal-detail": rule(sees(ON_THE_SHEET)),
    "api:beamtimesession-list": rule(writers=SIGNED_IN),
    "api:beamtimesession-detail": rule(sees(ON_THE_SHEET), writers=ON_THE_SHEET, pk=_session),
    "api:beamtimesession-sample-sheet": rule(sees(ON_THE_SHEET), writers=ON_THE_SHEET, pk=_session),
    "api:beamtimesession-targets": rule(sees(ON_THE_SHEET), pk=_session),
    "api:beamtimesession-transition": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET, pk=_session),
    "api:qualitypolicy-list": rule(),
    "api:qualitypolicy-detail": rule(writers=STAFF, pk=lambda w: _policy(w)),
    "api:samplesheetentry-list": rule(),
    "api:samplesheetentry-detail": rule(sees(ON_THE_SHEET), writers=ON_THE_SHEET, pk=_entry),
    "api:shipment-list": rule(writers=SIGNED_IN),
    "api:shipment-detail": rule(sees(ON_THE_SHEET)),
    "api:shipment-manifest": rule(sees(ON_THE_SHEET)),
    "api:shipment-transition": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET),
    # --- API: reconstruction
    "api:dataset-list": rule(writers=SIGNED_IN, scoped=True),
    "api:dataset-detail": rule(sees(ON_THE_SHEET)),
    "api:dataset-accept": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET),
    "api:dataset-reject": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET),
    "api:dataset-montage": rule(sees(ON_THE_SHEET)),
    "api:dataset-ro-crate": rule(sees(ON_THE_SHEET)),
    "api:dataset-metadata": rule(sees(ON_THE_SHEET)),
    "api:dataset-upload-list": rule(writers=SIGNED_IN),  # a person's own uploads
    "api:dataset-upload-detail": rule(sees(("member",)), writers=("member",), pk=UPLOAD),
    "api:dataset-upload-chunk": rule(sees(("member",)), get=False, writers=("member",), pk=UPLOAD),
    "api:reconstruction-job-list": rule(writers=SIGNED_IN, scoped=True),
    "api:reconstruction-job-detail": rule(sees(ON_THE_SHEET)),
    "api:reconstruction-job-cancel": rule(sees(ON_THE_SHEET), get=False, writers=ON_THE_SHEET),
    "api:volume-list": rule(scoped=True),
    "api:volume-detail": rule(sees(ON_THE_SHEET)),
    "api:volume-download": rule(sees(ON_THE_SHEET)),
    "api:volume-ro-crate": rule(sees(ON_THE_SHEET)),
}


def _policy(world):
    from beamtime.models import QualityPolicy

    return QualityPolicy.objects.get(beamline_id=_hzb(world)).pk


# --- machinery -----------------------------------------------------------------------------------


def _value(spec, world):
    return spec(world) if callable(spec) else spec


def _api_pk(route, world):
    """The first record the viewset's own queryset gives the superuser (None if it has none)."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    view = route.viewset()
    request = Request(APIRequestFactory().get("/"))
    request.user = world.users["superuser"]
    view.request, view.format_kwarg, view.kwargs = request, None, {}
    view.action = route.actions.get("get") or next(iter(route.actions.values()))
    record = view.get_queryset().order_by("pk").first()
    return record.pk if record is not None else None


def concrete(route, world) -> str:
    """The route's path with real ids of lab A's records."""
    the_rule = RULES[route.key]
    values = {}
    for name in route.kwargs:
        if name in the_rule.ids:
            values[name] = _value(the_rule.ids[name], world)
        elif route.api and name == "pk":
            values[name] = _api_pk(route, world)
        elif name in KWARGS:
            values[name] = _value(KWARGS[name], world)
        else:
            raise AssertionError(f"{route.key}: no value for the URL keyword {name!r}; give it in the rule")
        assert values[name] is not None, f"{route.key}: the world has no record for {name!r}"
    return urlmap.concrete_path(route, values)


def query(route, world) -> dict:
    return {k: _value(v, world) for k, v in RULES[route.key].query.items()}


def write_methods(route) -> list[str]:
    if route.api:
        return [m for m in route.actions if m in ("post", "put", "patch", "delete")]
    return ["post"]


def serves_get(route) -> bool:
    if route.api:
        return "get" in route.actions or not route.actions
    return RULES[route.key].get


def outcome(response) -> object:
    if response.status_code == 302 and response.get("Location", "").startswith(reverse("login")):
        return LOGIN
    if response.status_code == 401:
        return LOGIN
    return response.status_code


def unique_routes() -> list:
    seen, found = set(), []
    for route in urlmap.routes():
        if (route.route, route.name) not in seen:
            seen.add((route.route, route.name))
            found.append(route)
    return found


def route_param(routes) -> list:
    """One pytest parameter per URL, named by its rule (".suffix" for the format-suffix variant)."""
    return [pytest.param(r, id=r.key + (".<format>" if r.suffixed else "")) for r in routes]


ROUTES = unique_routes()
# The schema is generated afresh on each request (about 4 s): read by three roles only (it is the same
# document for every signed-in person).
SLOW = {"api:api-schema"}
SLOW_ROLES = ("anonymous", "member", "other_lab")
WRITABLE = [r for r in ROUTES if write_methods(r)]


# --- the tests -----------------------------------------------------------------------------------


def test_every_url_has_a_rule():
    keys = {route.key for route in ROUTES}
    missing = sorted(keys - set(RULES))
    assert not missing, f"URLs without a rule in the permission matrix (add one to RULES): {missing}"
    stale = sorted(set(RULES) - keys)
    assert not stale, f"Rules for URLs that no longer exist: {stale}"


def test_page_and_api_url_names_do_not_collide():
    """{% url %} and reverse() take a name: a page and an endpoint with one name send links astray."""
    pages = {r.name for r in ROUTES if not r.api}
    api = {r.name for r in ROUTES if r.api}
    assert not pages & api


def test_the_matrix_covers_format_suffixes():
    api_names = {r.name for r in ROUTES if r.api and r.actions}
    suffixed = {r.name for r in ROUTES if r.api and r.suffixed}
    assert len(suffixed) >= len(api_names) - 2, sorted(api_names - suffixed)


def test_the_schema_lists_every_api_operation_the_matrix_checks(world):
    """The API schema and the router agree: every router path is in the schema (so the matrix, built
    from the router, covers what the schema documents) and the schema has no path the router lacks."""
    schema = world.api_client("superuser").get("/api/v1/schema/", {"format": "json"}).json()
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in schema["paths"]}
    routed = set()
    for route in ROUTES:
        if route.api and route.actions and not route.suffixed:
            values = dict.fromkeys(route.kwargs, "{}")
            routed.add(urlmap.concrete_path(route, values).rstrip("/") + "/")
    assert documented == routed, (sorted(documented - routed), sorted(routed - documented))


@pytest.mark.parametrize("route", route_param(ROUTES))
def test_reading(world, route):
    """Every role's GET answers as the rule says (login, 200, 403, 404, or 405 where there is no GET),
    and no GET changes the database."""
    path, params = concrete(route, world), query(route, world)
    expected = RULES[route.key].visible
    failures = []
    watch = urlmap.Watch()
    for role in SLOW_ROLES if route.key in SLOW else ROLES:
        client = world.api_client(role) if route.api else world.client(role)
        got = outcome(client.get(path, params))
        want = expected[role]
        if not serves_get(route) and want != LOGIN:
            want = 405
        if got != want:
            failures.append(f"GET {path} as {role}: {got}, the rule says {want}")
    changed = watch.changed()
    assert not changed, f"GET {path} changed the database: {changed}"
    assert not failures, "\n".join(failures)


def test_lists_of_lab_records_are_empty_for_other_labs(world):
    failures = []
    for route in ROUTES:
        if not RULES[route.key].scoped_list or route.suffixed:
            continue
        path = concrete(route, world)
        assert world.api_client("superuser").get(path).json()["count"] > 0, f"{path}: the world has no records"
        for role in ("other_lab", "staff_unused"):
            body = world.api_client(role).get(path).json()
            if body["count"]:
                failures.append(f"{path} as {role}: {body['count']} record(s) of lab A")
    assert not failures, "\n".join(failures)


def _body(route, world, method) -> dict:
    """What a write sends: for PUT/PATCH the record as the superuser reads it (a valid payload, so a
    refusal is about the role, not a form error); otherwise empty."""
    if route.api and method in ("put", "patch") and serves_get(route):
        response = world.api_client("superuser").get(concrete(route, world))
        if response.status_code == 200 and response.get("Content-Type", "").startswith("application/json"):
            body = response.json()
            return {k: v for k, v in body.items() if not isinstance(v, (dict, list)) or k in ("parameters",)}
    return {}


@pytest.mark.parametrize("route", route_param(WRITABLE))
def test_writing(world, route):
    """Every write method the URL accepts, by every role: a role outside the rule's writers is refused
    (login, 404 where the record is hidden, else 3xx/4xx or the form again) and every table is unchanged
    afterwards; a writer's request (rolled back) is no server error."""
    failures = []
    path = concrete(route, world)
    the_rule = RULES[route.key]
    watch = urlmap.Watch()
    for method in write_methods(route):
        body = _body(route, world, method)
        for role in ROLES:
            kwargs = {"format": "json"} if route.api else {}
            if role in the_rule.writers:

                def send(role=role, method=method, kwargs=kwargs, body=body):
                    client = world.fresh_client(role, api=route.api)  # signing in writes: rolled back too
                    return getattr(client, method)(path, body, **kwargs)

                got = outcome(urlmap.rolled_back(send))
                if isinstance(got, int) and got >= 500:
                    failures.append(f"{method.upper()} {path} as {role}: {got}")
                watch.changed()  # rolled back: nothing to see, but the connection's write count moved on
                continue
            client = world.api_client(role) if route.api else world.client(role)
            got = outcome(getattr(client, method)(path, body, **kwargs))
            visible = the_rule.visible[role]
            if visible == LOGIN:
                ok = got == LOGIN
            elif visible == 404:
                ok = got in (404, 405)
            else:
                ok = got in (200, 302, 400, 403, 404, 405, 409)
            if not ok:
                failures.append(f"{method.upper()} {path} as {role}: {got} (a refusal expected)")
            if changed := watch.changed():
                failures.append(f"{method.upper()} {path} as {role}: the database changed ({changed})")
                watch.reset()
    assert not failures, "\n".join(failures)

"""Every URL of the project, read from the URL configuration and the API router (never a hand list),
and a populated installation to request them against (one record of every kind, made with the test
factories, and the roles of issue 12).

Shared by the permission matrix (test_permission_matrix.py) and the page crawler (test_crawler.py).
"""

from __future__ import annotations

import contextlib
import datetime
import re
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver

ADMIN_PREFIX = "admin/"


@dataclass(frozen=True)
class Route:
    """One named URL pattern: `name` as reverse() takes it, the keyword arguments it needs."""

    name: str
    route: str
    kwargs: tuple[str, ...]
    api: bool
    viewset: type | None = None
    actions: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def suffixed(self) -> bool:
        return "format" in self.kwargs

    @property
    def key(self) -> str:
        """The name the matrix's rules use (suffix variants share their plain URL's rule)."""
        return ("api:" if self.api else "") + self.name


def _kwarg_names(pattern: URLPattern) -> tuple[str, ...]:
    regex = pattern.pattern.regex
    return tuple(sorted(regex.groupindex))


def routes(resolver=None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every named pattern outside the Django admin (which checks `is_staff` itself)."""
    found: list[Route] = []
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            route = prefix + str(pattern.pattern)
            if route.startswith(ADMIN_PREFIX):
                continue
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}{pattern.namespace}:"
            found.extend(routes(pattern, route, ns))
            continue
        route = prefix + str(pattern.pattern)
        callback = pattern.callback
        api = route.startswith("api/")
        found.append(
            Route(
                name=namespace + (pattern.name or ""),
                route=route,
                kwargs=_kwarg_names(pattern),
                api=api,
                viewset=getattr(callback, "cls", None),
                actions=dict(getattr(callback, "actions", None) or {}),
            )
        )
    unnamed = [r.route for r in found if r.name.endswith(":") or not r.name]
    assert not unnamed, f"URL patterns without a name cannot be given a rule: {unnamed}"
    return found


def concrete_path(route: Route, values: dict) -> str:
    """The route with its keywords filled in (built from the pattern itself: page and API names may
    coincide, and reverse() would pick one of them)."""
    path = route.route
    if path.count("^") or "(?P<" in path:  # the router's regular expressions
        path = re.sub(r"\\\.\(\?P<format>[^)]*\)/\?\$", f".{values.get('format', '')}", path)
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), path)
        path = path.replace("^", "").replace("$", "").replace("\\", "")
    path = path.replace("<drf_format_suffix:format>", f".{values.get('format', '')}")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return "/" + path


# --- the populated installation -------------------------------------------------------------------

ROLES = ("anonymous", "member", "reviewer", "lab_admin", "other_lab", "staff_used", "staff_unused", "superuser")


@dataclass
class World:
    users: dict
    lab: object
    other_lab: object
    media: object = None

    clients: dict = field(default_factory=dict)

    def client(self, role: str):
        """A browser signed in as `role` (signed in once: a login writes `last_login`)."""
        from django.test import Client

        if ("page", role) not in self.clients:
            client = Client(raise_request_exception=False)
            if self.users.get(role) is not None:
                client.force_login(self.users[role])
            self.clients["page", role] = client
        return self.clients["page", role]

    def fresh_client(self, role: str, *, api: bool):
        """A client of its own (for a write that may sign it out)."""
        from django.test import Client
        from rest_framework.test import APIClient

        client = (APIClient if api else Client)(raise_request_exception=False)
        if self.users.get(role) is not None:
            (client.force_authenticate if api else client.force_login)(self.users[role])
        return client

    def api_client(self, role: str):
        from rest_framework.test import APIClient

        if ("api", role) not in self.clients:
            client = APIClient(raise_request_exception=False)
            if self.users.get(role) is not None:
                client.force_authenticate(self.users[role])
            self.clients["api", role] = client
        return self.clients["api", role]


def build_world(media) -> World:
    """Lab A with one record of every kind, made through the services with the test factories: a lot,
    box, cell line and seeding; plunge and HPF runs; a check with an image (preview computed), a target
    and a QC decision, and a check waiting for review; a proposal at HZB with a session, its sample sheet and a shipment; a calendar
    feed; a dataset accepted (its default job queued) and reconstructed by WBP into a volume, an
    open chunked upload; an API token. Lab B, facility
    staff of HZB (the beamline lab A uses) and of ALBA (one it does not), and a superuser."""
    import numpy as np
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import TestCase

    from beamtime import quality
    from beamtime import services as beamtime_services
    from characterization import services as characterization_services
    from characterization.selectors import GridQualityFacts
    from grids import services as grid_services
    from lims import tokens
    from reconstruction import services as reconstruction_services
    from tests.beamtime.factories import GOOD_FACTS, ProposalFactory, beamline, schedule, staff_user
    from tests.characterization.factories import compute_pending_metrics, make_check, png_bytes, small_tiff, upload
    from tests.factories import (
        CellLineFactory,
        LabFactory,
        MembershipFactory,
        StorageBoxFactory,
        UserFactory,
        make_grids,
    )
    from tests.reconstruction.factories import write_mrc_series
    from tests.vitrification.factories import HPF_PARAMS, PLUNGE_PARAMS, HPFFactory, PlungerFactory
    from vitrification import services as vitrification_services

    lab, other_lab = LabFactory(code="LABA"), LabFactory(code="LABB")
    member = MembershipFactory(lab=lab, role="member", user__username="member").user
    users = {
        "anonymous": None,
        "member": member,
        "reviewer": MembershipFactory(lab=lab, role="qc_reviewer", user__username="reviewer").user,
        "lab_admin": MembershipFactory(lab=lab, role="lab_admin", user__username="labadmin").user,
        "other_lab": MembershipFactory(lab=other_lab, role="lab_admin", user__username="outsider").user,
        "staff_used": staff_user(facility=beamline("hzb-u41-txm").facility, username="hzbstaff"),
        "staff_unused": staff_user(facility=beamline("alba-mistral").facility, username="albastaff"),
        "superuser": UserFactory(username="root", is_superuser=True, is_staff=True),
    }
    # grids: a box, a cell line and a seeding
    StorageBoxFactory(lab=lab)
    cell_line = CellLineFactory(lab=lab)
    grid_services.seeding_record(grids=make_grids(lab=lab, user=member, count=1), cell_line=cell_line, by=member)
    # vitrification: a plunge and an HPF run
    for factory, record, params in (
        (PlungerFactory, vitrification_services.plunge_run_record, PLUNGE_PARAMS),
        (HPFFactory, vitrification_services.hpf_run_record, HPF_PARAMS),
    ):
        grids = make_grids(lab=lab, user=member, count=1, state="seeded")
        record(grids=grids, instrument=factory(lab=lab), by=member, **params)
    # characterization: a check with an image, a target and a decision
    check = make_check(lab=lab, user=member)
    image = characterization_services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    compute_pending_metrics()
    image.refresh_from_db()
    characterization_services.target_create(image=image, x=10, y=10, by=member)
    characterization_services.qc_decide(lm_check=check, decision="accepted", reasons="even ice", by=users["reviewer"])
    make_check(lab=lab, user=member)  # one waiting in the review queue
    # beamtime: a session at HZB with two grids on its sheet, shipped
    original_facts = quality.characterization_facts
    quality.characterization_facts = lambda grid: GridQualityFacts(grid_id=grid.pk, **GOOD_FACTS)
    try:
        proposal = ProposalFactory(lab=lab, created_by=member, facility=beamline().facility)
        session = schedule(proposal=proposal, by=member, days=10, hours=24)
        grids = make_grids(lab=lab, user=member, count=2, state="accepted")
        for grid in grids:
            beamtime_services.sample_sheet_add(session=session, grid=grid, by=member)
        shipment = beamtime_services.shipment_create(session=session, dewar="CX-1", courier="courier", by=member)
        beamtime_services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    finally:
        quality.characterization_facts = original_facts
    beamtime_services.calendar_feed_for(lab=lab, by=member)
    # reconstruction: a dataset accepted and reconstructed into a volume; a chunked upload under way
    series = media / "series"
    series.mkdir(parents=True, exist_ok=True)
    path, _, _ = write_mrc_series(series, size=16, rows=4, tilts=21)
    grids[0].refresh_from_db()
    with TestCase.captureOnCommitCallbacks(execute=True):
        dataset = reconstruction_services.dataset_upload(
            by=member, session=session, grid=grids[0], upload=SimpleUploadedFile(path.name, path.read_bytes()),
            angles_file=SimpleUploadedFile("tilt.tlt", path.with_suffix(".tlt").read_bytes()),
        )  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=False):  # the recipe's jobs stay queued (never sent)
        reconstruction_services.dataset_decide(dataset=dataset, accept=True, by=member)
    with TestCase.captureOnCommitCallbacks(execute=True):  # WBP: the quickest to a volume
        job, _ = reconstruction_services.job_request(
            dataset=dataset, method="wbp", parameters={"align": False}, by=member
        )
    job.refresh_from_db()
    assert job.state == "succeeded", f"the world's reconstruction did not succeed: {job.error}"
    reconstruction_services.upload_start(by=member, filename="big.mrc", size_bytes=1024)
    tokens.api_token_create(user=member, name="matrix")
    default_storage.save("reconstruction/guide/sirt.png", ContentFile(png_bytes(np.zeros((4, 4), np.uint8))))
    return World(users=users, lab=lab, other_lab=other_lab, media=media)


@contextlib.contextmanager
def world_in_a_transaction(django_db_blocker, media):
    """Build the world once for a test module, inside a transaction rolled back at its end; each test
    runs in a savepoint of it (pytest-django's `db`). Tasks run eagerly while it is built."""
    from django.test import override_settings

    from config.celery import app

    eager = app.conf.task_always_eager
    with django_db_blocker.unblock(), transaction.atomic():
        app.conf.task_always_eager = True
        try:
            with override_settings(
                MEDIA_ROOT=media, CELERY_TASK_ALWAYS_EAGER=True,
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            ):  # fmt: skip
                built = build_world(media)
                for role in ROLES:  # signed in now: a login writes `last_login` and a session
                    built.client(role), built.api_client(role)
        finally:
            app.conf.task_always_eager = eager
        yield built
        transaction.set_rollback(True)


def db_fingerprint() -> dict:
    """Every row of every table, hashed per table (a refused write must leave this unchanged)."""
    rows = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            if table in ("django_session",):
                continue  # logging in writes sessions; that is not the record being refused
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the introspection
            rows.append((table, hash(tuple(sorted(map(repr, cursor.fetchall()))))))
    return dict(rows)


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


def _changes() -> int | None:
    """SQLite's count of rows this connection has inserted, updated or deleted (None elsewhere)."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT total_changes()")
        return cursor.fetchone()[0]


class Watch:
    """Whether the database changed since the watch began: every row of every table compared, skipped
    on SQLite when the connection has written no row at all since the last look."""

    def __init__(self):
        self.before = db_fingerprint()
        self.mark = _changes()

    def changed(self) -> list[str]:
        mark = _changes()
        if mark is not None and mark == self.mark:
            return []
        self.mark = mark
        return changed_tables(self.before, db_fingerprint())

    def reset(self) -> None:
        self.before, self.mark = db_fingerprint(), _changes()


def rolled_back(call):
    """Run `call` in a transaction that is rolled back, so an allowed write leaves the world as it was."""
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result


def aware(days: int) -> datetime.datetime:
    from django.utils import timezone

    return timezone.now() + datetime.timedelta(days=days)

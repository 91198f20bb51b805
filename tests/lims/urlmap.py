"""Every URL of the project, read from the URL configuration and the API router (never a hand list),
and a populated installation to request them against (the demo data plus the roles of issue 12).

Shared by the permission matrix (test_permission_matrix.py) and the page crawler (test_crawler.py).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.management import call_command
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


def build_world() -> World:
    """The demo data (every app adds its records to it), a second lab, facility staff of a beamline the
    demo lab uses (HZB) and of one it does not (ALBA), a lab admin who is not a superuser, a shipment
    and a calendar feed."""
    from beamtime import services as beamtime_services
    from beamtime.models import Beamline, BeamtimeSession, FacilityStaffAssignment, Shipment
    from lims.models import FacilityStaff, Lab, Membership, Role

    call_command("load_demo", stdout=_Null())
    User = get_user_model()
    lab = Lab.objects.get(code="DEMO")
    other_lab = Lab.objects.create(name="Other lab", code="OTHER", institution="Elsewhere")
    admin = User.objects.create_user("labadmin", "labadmin@example.org", "x")
    Membership.objects.create(lab=lab, user=admin, role=Role.LAB_ADMIN)
    outsider = User.objects.create_user("outsider", "outsider@example.org", "x")
    Membership.objects.create(lab=other_lab, user=outsider, role=Role.LAB_ADMIN)
    alba = Beamline.objects.get(code="alba-mistral").facility
    unused = User.objects.create_user("albastaff", "alba@example.org", "x")
    FacilityStaff.objects.get_or_create(user=unused)
    FacilityStaffAssignment.objects.get_or_create(user=unused, facility=alba)
    users = {
        "anonymous": None,
        "member": User.objects.get(username="bench"),
        "reviewer": User.objects.get(username="reviewer"),
        "lab_admin": admin,
        "other_lab": outsider,
        "staff_used": User.objects.get(username="beamline"),
        "staff_unused": unused,
        "superuser": User.objects.get(username="admin"),
    }
    session = BeamtimeSession.objects.filter(lab=lab).order_by("pk").first()
    if session is not None and not Shipment.objects.filter(session=session).exists():
        beamtime_services.shipment_create(session=session, dewar="DEMO-DEWAR", by=users["member"])
    beamtime_services.calendar_feed_for(lab=lab, by=users["member"])
    return World(users=users, lab=lab, other_lab=other_lab)


class _Null:
    def write(self, *args, **kwargs):
        pass

    def flush(self):
        pass


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


def rolled_back(call):
    """Run `call` in a transaction that is rolled back, so an allowed write leaves the world as it was."""
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result


def aware(days: int) -> datetime.datetime:
    from django.utils import timezone

    return timezone.now() + datetime.timedelta(days=days)

"""A crawler: every page and every API GET (from the URL configuration, with real ids of lab A's records)
requested with out-of-range and malformed query parameters. No answer is a server error, and nothing is
written.

The parameter names are not a hand list either: each page is fetched once and every form field name
and query-string key it offers (filters, pagination, calendar navigation) is fuzzed, together with the
API filters its viewset declares, the query parameters the API schema documents for the path, and the
usual suspects (page, page_size, ordering, format, ...).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.lims import urlmap
from tests.lims.test_permission_matrix import ROUTES, concrete, query, route_param, serves_get

COMMON = (
    "page", "page_size", "ordering", "format", "q", "search", "date", "view", "limit", "kind", "next",
    "lab", "grid", "grids", "lot", "box", "session", "beamline", "status", "state", "stage",
    "index", "low", "high", "offset", "start", "end",
)  # fmt: skip
# Every parameter at once gets each of these; each parameter alone the first three.
HOSTILE = (
    "99999999999999999999999999",  # beyond 64 bits
    "abc",
    "\x00",
    "-1",
    "9999-12-31",
    "0001-01-01T00:00",
    "1e309",
    "x" * 5000,
)
# Generated afresh on every request (about 4 s): every parameter at once only, and once per value.
SLOW = {"api:api-schema", "api:api-docs", "api:api-redoc"}

_NAME = re.compile(r"""<(?:input|select|textarea)[^>]*\bname=["']([^"']+)["']""", re.IGNORECASE)
_HREF = re.compile(r"""href=["']([^"']*\?[^"']*)["']""", re.IGNORECASE)

GETS = [r for r in ROUTES if serves_get(r)]


def _offered_names(html: str) -> set[str]:
    names = set(_NAME.findall(html))
    for href in _HREF.findall(html):
        names.update(key for key, _ in parse_qsl(urlsplit(href.replace("&amp;", "&")).query, keep_blank_values=True))
    return names - {"csrfmiddlewaretoken"}


def _api_filter_names(route) -> set[str]:
    view = route.viewset
    names = set(getattr(view, "filterset_fields", None) or [])
    filterset = getattr(view, "filterset_class", None)
    if filterset is not None:
        names.update(filterset.base_filters)
    names.update(getattr(view, "ordering_fields", None) or [])
    return {n for n in names if isinstance(n, str)}


_schema_names: dict = {}


def _schema_query_names(world, route) -> set[str]:
    """The query parameters the API schema documents for this path (read once per module)."""
    if not _schema_names:
        schema = world.api_client("superuser").get("/api/v1/schema/", {"format": "json"}).json()
        for path, operations in schema["paths"].items():
            names = set()
            for operation in operations.values():
                if isinstance(operation, dict):
                    names |= {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            _schema_names[re.sub(r"\{[^}]+\}", "{}", path)] = names
    plain = urlmap.concrete_path(route, dict.fromkeys(route.kwargs, "{}")).rstrip("/") + "/"
    return _schema_names.get(plain, set())


def _offered(world, route, client, path, base) -> set[str]:
    """The parameters the URL itself offers: its page's fields and links, or its viewset's filters and
    the schema's query parameters."""
    if route.api and route.actions:
        return _api_filter_names(route) | _schema_query_names(world, route)
    if not route.api:
        first = client.get(path, base)
        if first.get("Content-Type", "").startswith("text/html"):
            return _offered_names(first.content.decode(errors="replace"))
    return set()


@pytest.mark.parametrize("route", route_param(GETS))
def test_no_page_or_endpoint_answers_5xx_to_hostile_query_parameters(world, route):
    """As a member of lab A: every parameter at once with each hostile value, then each parameter the URL
    offers alone with the first three; as facility staff of the lab's beamline and as superuser, every
    parameter at once with the first four. No 5xx, no row changed."""
    path, base = concrete(route, world), query(route, world)
    failures, requests = [], 0
    watch = urlmap.Watch()
    for role in ("member", "staff_used", "superuser"):
        client = world.api_client(role) if route.api else world.client(role)
        offered = _offered(world, route, client, path, base)
        names = offered | set(COMMON)
        thorough = role == "member" and route.key not in SLOW
        values = HOSTILE if thorough else HOSTILE[:4]
        if route.key in SLOW and role != "member":
            continue
        for value in values:
            requests += 1
            response = client.get(path, {**base, **dict.fromkeys(names, value)})
            if response.status_code >= 500:
                failures.append(f"GET {path} as {role} with every parameter = {value[:20]!r}: {response.status_code}")
        if not thorough or route.suffixed:
            continue  # a suffixed URL runs the same view as its plain one
        for name in sorted(offered | {"page", "page_size", "date", "ordering", "index", "low"}):
            for value in HOSTILE[:3]:
                requests += 1
                response = client.get(path, {**base, name: value})
                if response.status_code >= 500:
                    failures.append(f"GET {path}?{name}={value[:20]!r} as {role}: {response.status_code}")
    assert not failures, f"{len(failures)} server error(s):\n" + "\n".join(failures[:40])
    changed = watch.changed()
    assert not changed, f"GET {path} with odd parameters changed the database: {changed}"
    assert requests >= 4

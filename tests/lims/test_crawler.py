"""A crawler: every page and every API GET (from the URL configuration, with real ids from the demo
data) requested with out-of-range and malformed query parameters. No answer is a server error, and
nothing is written.

The parameter names are not a hand list either: each page is fetched once and every form field name
and query-string key it offers (filters, pagination, calendar navigation) is fuzzed, together with the
API filters its viewset declares and the usual suspects (page, page_size, ordering, format, ...).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.lims import urlmap
from tests.lims.test_permission_matrix import concrete, query, serves_get, unique_routes

COMMON = (
    "page", "page_size", "ordering", "format", "q", "date", "view", "limit", "kind", "next",
    "lab", "grid", "grids", "lot", "box", "session", "beamline", "status", "state", "stage",
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

_NAME = re.compile(r"""<(?:input|select|textarea)[^>]*\bname=["']([^"']+)["']""", re.IGNORECASE)
_HREF = re.compile(r"""href=["']([^"']*\?[^"']*)["']""", re.IGNORECASE)


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
    return names


@pytest.fixture
def world(db):
    built = urlmap.build_world()
    for role in urlmap.ROLES:
        built.client(role), built.api_client(role)
    return built


def _crawl(world, role: str, *, each: bool) -> tuple[int, list[str]]:
    failures, requests = [], 0

    def get(client, path, params, what):
        nonlocal requests
        requests += 1
        response = client.get(path, params)
        if response.status_code >= 500:
            failures.append(f"GET {path} {what} as {role}: {response.status_code}")

    for route in unique_routes():
        if not serves_get(route) or (route.suffixed and not each):
            continue
        path, base = concrete(route, world), query(route, world)
        client = world.api_client(role) if route.api else world.client(role)
        first = client.get(path, base)
        names = set(COMMON)
        if route.api:
            names |= _api_filter_names(route) if route.viewset else set()
        elif first.get("Content-Type", "").startswith("text/html"):
            names |= _offered_names(first.content.decode(errors="replace"))
        for value in HOSTILE if each else HOSTILE[:4]:
            get(client, path, {**base, **dict.fromkeys(names, value)}, f"with every parameter {value[:20]!r}")
        if not each or route.suffixed:
            continue  # a suffixed URL runs the same view as its plain one
        for name in sorted(names - set(COMMON) | {"page", "page_size", "date", "ordering"}):
            for value in HOSTILE[:3]:
                get(client, path, {**base, name: value}, f"?{name}={value[:20]!r}")
    return requests, failures


@pytest.mark.parametrize(("role", "each"), [("member", True), ("staff_used", False), ("superuser", False)])
def test_no_page_or_endpoint_answers_5xx_to_hostile_query_parameters(world, role, each):
    before = urlmap.db_fingerprint()
    requests, failures = _crawl(world, role, each=each)
    assert not failures, f"{len(failures)} server error(s):\n" + "\n".join(failures[:60])
    assert not urlmap.changed_tables(before, urlmap.db_fingerprint()), "a GET with odd parameters changed the database"
    assert requests > (2000 if each else 250)

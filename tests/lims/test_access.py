"""Every page and every endpoint needs a login: walked over the whole URL map, not a sample of it."""

import re

from django.urls import URLResolver, get_resolver

# Reachable without a login on purpose: the login and logout pages, and the calendar feed behind a
# secret token (calendar programs cannot log in).
OPEN_BY_DESIGN = ("accounts/login/", "accounts/logout/", "beamtime/feeds/")


def _routes(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def _as_path(route: str) -> str:
    """A concrete URL for a route: every parameter filled with 1, router regexes flattened."""
    path = re.sub(r"\\\.\(\?P<format>[^)]*\)/\?", ".json", route)
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", path)
    path = path.replace("<drf_format_suffix:format>", ".json")
    path = re.sub(r"<(?:\w+:)?\w+>", "1", path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def test_every_page_and_endpoint_refuses_an_anonymous_visitor(client, db):
    checked = 0
    for route in _routes():
        if route.startswith("admin/") or route.startswith(OPEN_BY_DESIGN):
            continue
        url = _as_path(route)
        for method in (client.get, client.post):
            response = method(url)
            if url.startswith("/api/"):
                assert response.status_code in (401, 403), (url, response.status_code)
            else:
                assert response.status_code == 302 and "/accounts/login/" in response["Location"], (
                    url,
                    response.status_code,
                )
        checked += 1
    assert checked > 50


def test_the_api_schema_needs_a_login(client, db):
    assert client.get("/api/v1/schema/").status_code in (401, 403)

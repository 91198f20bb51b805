"""Every list page paginates, and any page number — past the end, below 1, not a number — answers the
nearest valid page, never a server error."""

from __future__ import annotations

import pytest
from django.core.paginator import Page
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from lims.paging import PAGE_SIZE, page_number
from tests.factories import GridLotFactory, make_grids

pytestmark = pytest.mark.django_db

# Lists whose length is bounded by the setup, not by the lab's work: one policy per beamline, one feed
# per lab or beamline of the person, the fixed kinds of import.
BOUNDED = {"beamtime:policy-list", "beamtime:feed-list", "import-list"}
PAGE_NUMBERS = ("0", "-3", "999999", "9" * 30, "abc")


# Index pages whose length is bounded by the code, not by the rows: the import page lists the kinds of import.
NOT_ROW_LISTS = {"import-index"}


def _list_urls() -> list[str]:
    """Names of the pages that list rows: `…-list`, `…-index` and the review queue, without arguments."""
    found = []

    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace == "admin" or str(p.pattern).startswith("api/"):
                    continue
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
            elif isinstance(p, URLPattern) and p.name and not p.pattern.converters:
                name = f"{namespace}{p.name}"
                if name.endswith(("-list", "-index", ":index", "-queue")) and name not in NOT_ROW_LISTS:
                    found.append(name)

    walk(get_resolver().url_patterns)
    return sorted(set(found))


def test_the_crawl_finds_the_lists():
    names = _list_urls()
    for expected in ("grids:grid-list", "grids:lot-list", "beamtime:session-list", "reconstruction:index"):
        assert expected in names
    assert len(names) >= 14


@pytest.mark.parametrize("name", [n for n in _list_urls() if n not in BOUNDED])
def test_every_list_page_paginates_and_any_page_number_answers(client, lab, member, name):
    make_grids(lab=lab, user=member, count=3)
    client.force_login(member)
    for number in PAGE_NUMBERS:
        response = client.get(reverse(name), {"page": number})
        assert response.status_code == 200, (name, number, response.status_code)
        page = response.context["page"]
        assert isinstance(page, Page), name
        assert page.number == 1, (name, number)  # one page of rows: every number lands on it
        assert page.paginator.per_page <= 100


def test_a_long_list_shows_one_page_and_a_pager_and_past_the_end_the_last_page(client, lab, member):
    lot = GridLotFactory(lab=lab, created_by=member, quantity=PAGE_SIZE + 10)
    make_grids(lab=lab, user=member, count=PAGE_SIZE + 7, lot=lot)
    client.force_login(member)
    first = client.get(reverse("grids:lot-detail", args=[lot.pk]))
    assert len(first.context["page"].object_list) == PAGE_SIZE
    assert "Page 1 of 2" in first.content.decode()
    last = client.get(reverse("grids:lot-detail", args=[lot.pk]), {"page": "5000"})
    assert last.context["page"].number == 2
    assert len(last.context["page"].object_list) == 7
    assert f"Grids from this lot ({PAGE_SIZE + 7})" in last.content.decode()
    below = client.get(reverse("grids:grid-list"), {"page": "-2"})
    assert below.context["page"].number == 1


def test_the_pager_keeps_the_filters(client, lab, member):
    make_grids(lab=lab, user=member, count=PAGE_SIZE + 1)
    client.force_login(member)
    text = client.get(reverse("grids:grid-list"), {"state": "registered"}).content.decode()
    assert "state=registered&amp;page=2" in text


def test_an_api_list_answers_the_nearest_page_too(client, lab, member):
    make_grids(lab=lab, user=member, count=3)
    client.force_login(member)
    for number in ("9999", "-1", "abc", "last"):
        response = client.get("/api/v1/grids/", {"page": number, "page_size": 2})
        assert response.status_code == 200, (number, response.status_code)
        body = response.json()
        assert body["count"] == 3
        assert len(body["results"]) == (1 if number in ("9999", "last") else 2), number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3", 3), (" 4 ", 4), ("2.0", 2), ("0", 1), ("-7", 1), ("abc", 1), (None, 1), ("", 1), ("٣", 1), ("9" * 40, 1)],
)
def test_a_page_number_is_read_as_a_whole_number_of_at_least_one(raw, expected):
    assert page_number(raw) == expected

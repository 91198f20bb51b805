"""The API's page count (issue 10): a long list's COUNT(*) is reused for a few seconds, a short one never is."""

import pytest
from django.core.cache import cache

from lims import api_base
from tests.factories import make_grids


@pytest.fixture(autouse=True)
def _no_count_outlives_its_test():
    # Ids repeat across tests (rolled back), so a count kept here could answer another test's list.
    cache.clear()
    yield
    cache.clear()


def test_a_short_list_is_counted_on_every_request(api, lab, member):
    cache.clear()
    make_grids(lab=lab, user=member, count=2)
    assert api.get("/api/v1/grids/").json()["count"] == 2
    make_grids(lab=lab, user=member, count=1)
    assert api.get("/api/v1/grids/").json()["count"] == 3


def test_a_long_lists_count_is_reused_only_for_the_same_rows(api, lab, member, monkeypatch):
    cache.clear()
    monkeypatch.setattr(api_base, "LARGE_COUNT", 3)
    make_grids(lab=lab, user=member, count=3)
    assert api.get("/api/v1/grids/").json()["count"] == 3
    make_grids(lab=lab, user=member, count=2, state="seeded")
    # The same list within COUNT_SECONDS: the count read before; its rows are read afresh (newest first).
    again = api.get("/api/v1/grids/?page_size=2").json()
    assert again["count"] == 3 and [row["state"] for row in again["results"]] == ["seeded", "seeded"]
    # Other filters are other rows: counted, not taken from the first list's count.
    assert api.get("/api/v1/grids/?state=seeded").json()["count"] == 2
    cache.clear()
    assert api.get("/api/v1/grids/").json()["count"] == 5


def test_a_long_count_is_never_shared_between_labs_filters_or_searches(api, lab, member, other_lab, monkeypatch):
    from rest_framework.test import APIClient

    from lims.models import Membership, Role
    from tests.factories import UserFactory

    cache.clear()
    monkeypatch.setattr(api_base, "LARGE_COUNT", 2)
    make_grids(lab=lab, user=member, count=4)
    outsider = UserFactory()
    Membership.objects.create(lab=other_lab, user=outsider, role=Role.MEMBER)
    make_grids(lab=other_lab, user=outsider, count=3, state="seeded")
    theirs = APIClient()
    theirs.force_authenticate(outsider)
    assert api.get("/api/v1/grids/").json()["count"] == 4
    assert theirs.get("/api/v1/grids/").json()["count"] == 3
    assert theirs.get("/api/v1/grids/", {"state": "registered"}).json()["count"] == 0
    assert api.get("/api/v1/grids/", {"state": "registered"}).json()["count"] == 4
    assert api.get("/api/v1/grids/", {"state": "seeded"}).json()["count"] == 0
    first = api.get("/api/v1/grids/").json()["results"][0]["barcode"]
    assert api.get("/api/v1/grids/", {"search": first}).json()["count"] == 1
    # A filter through a join (the lot's grid type) is another WHERE clause, so another count.
    assert api.get("/api/v1/grids/", {"grid_type": 10**9}).json()["count"] == 0


def test_the_count_key_tells_apart_what_the_where_clause_alone_does_not(lab, member):
    from grids.models import Grid, Seeding

    make_grids(lab=lab, user=member, count=2)
    plain = Grid.objects.filter(lab=lab)
    assert api_base._counted_rows(plain) == api_base._counted_rows(Grid.objects.filter(lab=lab))
    assert api_base._counted_rows(plain) != api_base._counted_rows(Grid.objects.filter(lab=lab, slot=1))
    # A join that repeats rows, and DISTINCT, change the count with the same WHERE clause.
    joined = Grid.objects.filter(lab=lab).filter(seedings__isnull=False)
    assert api_base._counted_rows(joined) != api_base._counted_rows(plain)
    assert api_base._counted_rows(joined.distinct()) != api_base._counted_rows(joined)
    assert api_base._counted_rows(plain) != api_base._counted_rows(Seeding.objects.filter(lab=lab))
    # extra(tables=…) adds a table to FROM (a cross join) without touching the WHERE clause.
    crossed = Grid.objects.filter(lab=lab).extra(tables=["lims_lab"])  # noqa: S610 - the case itself
    assert api_base._counted_rows(crossed) != api_base._counted_rows(plain)
    everything = api_base._counted_rows(Grid.objects.all())
    assert everything[3] == ""  # no WHERE clause at all

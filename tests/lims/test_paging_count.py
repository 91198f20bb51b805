"""The API's page count (issue 10): a long list's COUNT(*) is reused for a few seconds, a short one never is."""

from django.core.cache import cache

from lims import api_base
from tests.factories import make_grids


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

"""Requests that used to answer 500: format suffixes on API actions, far dates on the calendar;
and a GET that used to create rows."""

from __future__ import annotations

import pytest

from beamtime.models import CalendarFeed
from tests.factories import make_grids

pytestmark = pytest.mark.django_db


def test_a_format_suffix_on_a_detail_action_answers_like_the_plain_url(api, member, lab):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    plain = api.get(f"/api/v1/labs/{lab.pk}/members/")
    suffixed = api.get(f"/api/v1/labs/{lab.pk}/members.json/")
    assert suffixed.status_code == 200
    assert suffixed.json() == plain.json()
    assert api.get(f"/api/v1/grids/{grid.pk}/label.json/").status_code == 200
    assert api.get(f"/api/v1/grids/{grid.pk}/label.xml/").status_code == 404


def test_a_format_suffix_on_a_write_action_still_writes(api, member, lab):
    lot_response = api.post(
        "/api/v1/grid-lots/",
        {"lab": lab.pk, "grid_type": 1, "lot_number": "L-1", "quantity": 5},
        format="json",
    )
    lot = lot_response.json()["id"]
    response = api.post(f"/api/v1/grid-lots/{lot}/register-grids.json/", {"count": 2}, format="json")
    assert response.status_code == 201, response.content
    assert len(response.json()) == 2


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01", "2026-02-30", "x", "99999-01-01"])
@pytest.mark.parametrize("view", ["month", "week"])
def test_the_calendar_shows_today_for_a_date_it_cannot_page_around(web, date, view):
    response = web.get("/beamtime/", {"date": date, "view": view})
    assert response.status_code == 200


def test_the_feeds_page_creates_no_feed_on_a_get_and_issues_one_on_a_post(web, lab):
    assert web.get("/beamtime/feeds/").status_code == 200
    assert CalendarFeed.objects.count() == 0
    web.post("/beamtime/feeds/", {"lab": lab.pk})
    assert CalendarFeed.objects.filter(lab=lab).count() == 1


def test_issuing_a_feed_for_another_labs_id_is_the_same_404_as_a_missing_id(web, other_lab):
    assert web.post("/beamtime/feeds/", {"lab": other_lab.pk}).status_code == 404
    assert web.post("/beamtime/feeds/", {"lab": 987654}).status_code == 404
    assert web.post("/beamtime/feeds/", {"lab": "abc"}).status_code == 404
    assert CalendarFeed.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7), ("0", None), ("-3", None), ("abc", None), ("", None), (None, None), ("٣", None),
     (str(2**63 - 1), 2**63 - 1), (str(2**63), None), ("99999999999999999999999999", None)],
)  # fmt: skip
def test_an_id_from_a_query_parameter_is_a_64_bit_positive_integer_or_none(text, expected):
    from lims.forms import parse_id

    assert parse_id(text) == expected


@pytest.mark.parametrize("value", ["99999999999999999999999999", "abc", "-1"])
def test_id_filters_beyond_64_bits_are_a_400_or_an_empty_answer_not_a_500(api, web, value):
    response = api.get("/api/v1/grids/", {"lab": value})
    assert response.status_code == 400 or response.json()["count"] == 0
    assert web.get("/grids/", {"lot": value}).status_code == 200
    assert web.get("/beamtime/sessions/", {"beamline": value, "status": value}).status_code == 200
    assert web.get("/vitrification/", {"grids": value}).status_code == 200
    assert web.get("/grids/labels/", {"grids": value}).status_code == 404

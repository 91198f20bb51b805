"""How the API writes datetimes (lims.api_base.datetime_text, issue 10): what DRF's DateTimeField writes."""

import datetime
import zoneinfo

from rest_framework import serializers

from lims import api_base


def test_datetime_text_is_what_drfs_datetime_field_answers():
    values = [
        datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.UTC),  # a DST change in Berlin
        datetime.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=datetime.UTC),
        datetime.datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")),
        datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.UTC),  # past the end east of UTC
        datetime.datetime(2026, 1, 1),  # noqa: DTZ001 - a naive value on purpose
        None,
    ]
    zones = ("UTC", "Etc/UTC", "Europe/Berlin", "America/New_York")
    for zone in (datetime.UTC, *(zoneinfo.ZoneInfo(name) for name in zones)):
        ours, drf = api_base.datetime_text(zone), serializers.DateTimeField(default_timezone=zone).to_representation
        for value in values:
            assert _answer(ours, value) == _answer(drf, value), (zone, value)


def _answer(write, value):
    try:
        return write(value)
    except serializers.ValidationError as error:
        return ("error", error.detail)

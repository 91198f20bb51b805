"""The API's JSON renderer (lims.renderers.JSONRenderer, issue 10) writes with orjson; every answer must parse to
what DRF's own renderer gives, and what orjson cannot write goes to DRF instead of failing."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
import zoneinfo

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.utils.serializer_helpers import ReturnDict

from lims.renderers import JSONRenderer

CASES = {
    "text": {"name": "Grid ß µm⁻¹ 日本", "empty": "", "nested": [{"a": [1, 2.5, None, True]}]},
    "js line separators": {"note": "line\u2028next\u2029para"},
    "datetimes": {
        "utc": datetime.datetime(2026, 12, 7, 14, 0, 0, 123456, tzinfo=datetime.UTC),
        "berlin": datetime.datetime(2026, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
        "date": datetime.date(2026, 12, 7),
        "time": datetime.time(9, 30),
        "span": datetime.timedelta(hours=1, seconds=1),
    },
    "numbers": {"decimal": decimal.Decimal("1.25"), "float": 1e-05, "big float": 1.5e300, "int": -(2**63)},
    "other types": {
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "lazy": gettext_lazy("Grids"),
        "numpy": np.float32(0.5),
        "array": np.arange(3),
        "tuple": (1, "a"),
        "int keys": {1: "one", 2: "two"},
        "return dict": ReturnDict({"id": 3}, serializer=None),
    },
    "beyond 64 bits": {"huge": 2**70},
}


@pytest.mark.parametrize("name", list(CASES))
def test_an_answer_parses_to_what_drfs_renderer_gives(name):
    ours = JSONRenderer().render(CASES[name])
    theirs = renderers.JSONRenderer().render(CASES[name])
    assert json.loads(ours) == json.loads(theirs)
    assert b"\xe2\x80\xa8" not in ours and b"\xe2\x80\xa9" not in ours  # escaped, as DRF does


def test_an_answer_is_compact_utf8_and_keeps_the_key_order():
    written = JSONRenderer().render({"z": 1, "a": "µ"})
    assert written == '{"z":1,"a":"µ"}'.encode()


def test_indented_output_is_drfs_own():
    data = {"results": [{"id": 1}]}
    ours = JSONRenderer().render(data, "application/json; indent=4")
    assert ours == renderers.JSONRenderer().render(data, "application/json; indent=4")
    assert b"\n    " in ours


def test_what_neither_can_write_is_drfs_error():
    with pytest.raises(TypeError):
        JSONRenderer().render({"thing": object()})


def test_the_api_answers_through_it(api, lab, member):
    from tests.factories import make_grids

    make_grids(lab=lab, user=member, count=2)
    response = api.get("/api/v1/grids/", HTTP_ACCEPT="application/json")
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.json()["count"] == 2 and response.content.startswith(b'{"count":2,')

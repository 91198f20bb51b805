"""The API's JSON renderer (named in settings; a module of its own, since DRF imports its renderers while it
defines APIView)."""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, writing with orjson where it can: the standard library's encoder was a twentieth of a
    50-grid list request's server time, orjson's is a few per cent of that (issue 10).

    The answer parses to what DRF's would: whatever orjson does not write itself the way DRF's encoder does
    (dates and times, decimals, lazy strings, NumPy values, dataclasses) goes through DRF's encoder; integer
    keys are written as strings, as `json` does; U+2028 and U+2029 are escaped, as DRF does. Indented output
    (the browsable API, `indent=` in the Accept header) and anything orjson refuses (an integer beyond 64 bits)
    are written by DRF. Floats may be spelled differently (`0.00001` for `1e-05`), never valued differently;
    a NaN is written as null where DRF's strict mode raised, making a server error an answer."""

    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if (
            self.compact
            and not self.ensure_ascii
            and self.get_indent(accepted_media_type, renderer_context or {}) is None
        ):
            try:
                written = orjson.dumps(data, default=_DRF_ENCODER.default, option=self._OPTIONS)
            except (orjson.JSONEncodeError, TypeError, ValueError):
                pass  # DRF's encoder writes it or raises its own error
            else:
                if b"\xe2\x80\xa8" in written or b"\xe2\x80\xa9" in written:
                    written = written.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
                return written
        return super().render(data, accepted_media_type, renderer_context)


_DRF_ENCODER = JSONEncoder()

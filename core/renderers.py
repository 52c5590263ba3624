"""The API's JSON renderer: DRF's output, byte for byte, written by orjson.

DRF's ``JSONRenderer`` (compact separators, UTF-8 rather than ``\\u`` escapes, U+2028 and
U+2029 escaped) spends most of a large list's time in ``json.dumps`` and its encoder
class. orjson writes the same bytes for the types API data holds (str, int, bool, None,
lists, dicts, UUIDs); dates, times, decimals and anything else go through DRF's own
encoder. What orjson cannot write the same way (integers beyond 64 bits, non-string keys,
an indented answer) is left to DRF's renderer.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_drf_default = JSONEncoder().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _default(value: Any) -> Any:
    return _drf_default(value)


def json_bytes(data: Any) -> bytes:
    """``data`` as the API writes it: DRF's compact JSON, byte for byte."""
    try:
        body = orjson.dumps(data, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return bytes(renderers.JSONRenderer().render(data))
    if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
        body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return body


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        return json_bytes(data)

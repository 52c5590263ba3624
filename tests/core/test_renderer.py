"""The orjson renderer writes exactly what DRF's JSON renderer writes."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils.functional import lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from core.renderers import JSONRenderer

lazy_text = lazy(lambda: "lazy é", str)()

VALUES = [
    None,
    {},
    [],
    {"a": 1, "b": [True, False, None], "c": {"d": "e"}},
    {"text": 'quote " backslash \\ slash / tab \t newline \n nul \x00 unit \x1f del \x7f'},
    {"unicode": "é 日本 😀 \u2028 line \u2029 paragraph \ud7ff"},
    {"ints": [0, -1, 2**63 - 1, -(2**63)], "big": 2**70},
    {"uuid": uuid.UUID(int=12345)},
    {"when": datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "day": date(2025, 1, 2), "at": time(3, 4, 5)},
    {"naive": datetime(2025, 1, 2, 3, 4, 5), "offset": datetime(2025, 1, 2, 3, tzinfo=UTC).astimezone()},
    {"span": timedelta(hours=1, seconds=3)},
    {"decimal": Decimal("1.50")},
    {"detail": ErrorDetail("bad", code="invalid"), "lazy": lazy_text},
    ReturnDict({"x": ReturnList([1, 2], serializer=None)}, serializer=None),
    {1: "int key"},
    ("tuple", 1),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_bytes_as_drf(value):
    assert JSONRenderer().render(value) == DRFJSONRenderer().render(value)


def test_indented_answer_as_drf():
    value = {"a": [1, {"b": "c"}]}
    media = "application/json; indent=2"
    assert JSONRenderer().render(value, media, {}) == DRFJSONRenderer().render(value, media, {})

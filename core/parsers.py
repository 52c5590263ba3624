"""JSON request parsing with limits: exact decimals, bounded size, bounded nesting."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


class JSONParser(parsers.JSONParser):
    """Parses JSON numbers with a fraction as Decimal (never float), and refuses
    bodies over ``API_MAX_BODY_BYTES`` (413) or nested deeper than ``API_MAX_JSON_DEPTH`` (400)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        from core.errors import PayloadTooLarge  # core.errors imports DRF settings, which import this module

        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        try:
            data = json.loads(raw.decode("utf-8"), parse_float=Decimal)
        except RecursionError:
            raise ParseError("JSON nested too deeply.") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _depth(data) > settings.API_MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        return data

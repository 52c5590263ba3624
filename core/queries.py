"""Query strings read by serializers: one ``QuerySerializer`` per endpoint's query.

Every parameter is read as sent (absent is the field's default; present, even empty, is
parsed), and the first invalid one, in the order the fields are declared, is the same 400
every hand-checked parameter gets: ``FieldError(name, message)``, ``errors`` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField, empty
from rest_framework.request import Request

from core.errors import FieldError


class QueryField(serializers.Field):
    """One query parameter (its last value when repeated), parsed by ``parse``; a ``ValueError``
    it raises is the parameter's error message."""

    def __init__(self, parse: Callable[[Any], Any], **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", None)
        super().__init__(**kwargs)
        self.parse = parse

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, data: Any) -> Any:
        try:
            return self.parse(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


class QueryListField(QueryField):
    """A repeatable query parameter: ``parse`` gets every value sent, in order."""

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.getlist(self.field_name) if self.field_name in dictionary else empty


class QuerySerializer(serializers.Serializer):
    """An endpoint's query string. ``parse`` answers the first invalid parameter with a 400.

    ``values`` keeps what the valid parameters parsed to, even when another one is invalid, so a
    view can act on some parameters before it answers about the others."""

    values: dict[str, Any]

    def get_fields(self) -> dict[str, serializers.Field]:
        # Query fields hold no per-request state until bound: a shallow copy each is enough, and
        # much cheaper than the deep copy DRF makes for body serializers (this runs per request).
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # ``values`` fills in declared order, so a field's validator can read the fields before it.
        self.values = values = {}
        errors: dict[str, Any] = {}
        for field in self._writable_fields:
            name = str(field.field_name)
            validate = getattr(self, "validate_" + name, None)
            try:
                value = field.run_validation(field.get_value(data))
                if validate is not None:
                    value = validate(value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except SkipField:
                pass
            else:
                values[name] = value
        if errors:
            raise serializers.ValidationError(errors)
        return values

    @classmethod
    def read(cls, request: Request, **context: Any) -> QuerySerializer:
        """The query read and checked; its errors are raised by ``raise_first``."""
        query = cls(data=request.query_params, context={"request": request, **context})
        query.is_valid()
        return query

    @classmethod
    def parse(cls, request: Request, **context: Any) -> dict[str, Any]:
        """The query's values; the first invalid parameter is a 400 naming it."""
        query = cls.read(request, **context)
        query.raise_first()
        return dict(query.validated_data)

    def raise_first(self, among: Iterable[str] | None = None) -> None:
        """Raise the first error (of the parameters ``among``, when given) as a 400 naming the parameter."""
        names = None if among is None else frozenset(among)
        for name, messages in self.errors.items():
            if names is None or name in names:
                raise FieldError(name, str(messages[0]))

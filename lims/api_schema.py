"""The OpenAPI schema's house style: every operation has a description and an example.

An operation's description starts with one sentence saying what the operation does (list, read, create,
…), followed by the viewset's or action's docstring (Markdown, rendered by the docs page). Where a view
gives no example, one is built from the serializer's fields, so a reader of /api/docs/ sees the shape
of a request and of an answer for every operation.
"""

from __future__ import annotations

import datetime
import decimal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.plumbing import (
    build_examples_list,
    build_listed_example_value,
    force_instance,
    is_list_serializer,
    is_serializer,
)
from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

LIST_NOTE = (
    "Paginated (`?page=`, `?page_size=` up to 500); filter with the query parameters below, "
    "`?search=` text and `?ordering=field` (`-field` descending). `?format=csv` streams every matching "
    "row as CSV."
)

ACTION_SENTENCES = {
    "list": "List the {plural} you can see.",
    "retrieve": "Read one {name}.",
    "create": "Create a {name}.",
    "update": "Replace the editable fields of one {name}.",
    "partial_update": "Change some editable fields of one {name}.",
    "destroy": "Delete one {name}.",
}

_SAMPLES: list[tuple[type, object]] = [
    (serializers.BooleanField, True),
    (serializers.IntegerField, 1),
    (serializers.FloatField, 1.5),
    (serializers.DecimalField, "1.50"),
    (serializers.DateTimeField, "2026-05-04T09:30:00Z"),
    (serializers.DateField, "2026-05-04"),
    (serializers.TimeField, "09:30:00"),
    (serializers.DurationField, "01:00:00"),
    (serializers.EmailField, "person@example.org"),
    (serializers.URLField, "https://lims.example.org/api/v1/grids/1/"),
    (serializers.HyperlinkedIdentityField, "https://lims.example.org/api/v1/grids/1/"),
    (serializers.HyperlinkedRelatedField, "https://lims.example.org/api/v1/grids/1/"),
    (serializers.UUIDField, "3f2b8c1e-7a4d-4c52-9a0e-1d2c3b4a5f60"),
    (serializers.FileField, "image.tif"),
    (serializers.JSONField, {}),
    (serializers.DictField, {}),
]


def example_value(field: serializers.Field, *, direction: str, depth: int = 0):
    """A plausible value for `field` (a choice's first value, an id for a relation, nested examples)."""
    if depth > 3:
        return None
    if is_list_serializer(field):
        return [example_value(field.child, direction=direction, depth=depth + 1)]
    if is_serializer(field):
        return example_object(field, direction=direction, depth=depth + 1)
    if isinstance(field, serializers.ManyRelatedField):
        return [example_value(field.child_relation, direction=direction, depth=depth + 1)]
    if isinstance(field, serializers.ListField):
        child = getattr(field, "child", None)
        return [example_value(child, direction=direction, depth=depth + 1)] if child is not None else []
    if isinstance(field, serializers.ChoiceField):
        return next(iter(field.choices), "")
    if isinstance(field, serializers.SlugRelatedField):
        return "bench" if field.slug_field == "username" else "example"
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        return 1
    for kind, sample in _SAMPLES:
        if isinstance(field, kind):
            return sample
    if isinstance(field, serializers.SerializerMethodField):
        return None
    if isinstance(field, serializers.CharField):
        return _text_sample(field.field_name or "")
    return None


def _text_sample(name: str) -> str:
    words = {"barcode": "G-DEMO-000123", "username": "bench", "reason": "cracked film", "reasons": "even ice"}
    for key, value in words.items():
        if key in name:
            return value
    return name.replace("_", " ") or "text"


def example_object(serializer: serializers.Serializer, *, direction: str, depth: int = 0) -> dict:
    data = {}
    for name, field in force_instance(serializer).fields.items():
        if direction == "request" and field.read_only:
            continue
        if direction == "response" and field.write_only:
            continue
        value = example_value(field, direction=direction, depth=depth)
        if isinstance(value, datetime.date | decimal.Decimal):
            value = str(value)
        data[name] = value
    return data


class AutoSchema(BaseAutoSchema):
    """drf-spectacular's AutoSchema with a description and an example for every operation."""

    def get_description(self) -> str:
        doc = super().get_description() or ""
        action = getattr(self.view, "action", None)
        model = getattr(getattr(self._get_serializer(), "Meta", None), "model", None)
        name = str(model._meta.verbose_name) if model else "record"
        plural = str(model._meta.verbose_name_plural) if model else "records"
        sentence = ACTION_SENTENCES.get(action, "").format(name=name, plural=plural)
        if not sentence and not doc:
            sentence = f"{(action or self.method).replace('_', ' ').capitalize()} ({name})."
        parts = [p for p in (sentence, doc.strip()) if p]
        if action == "list" or (self._is_list_view() and self.method == "GET"):
            parts.append(LIST_NOTE)
        return "\n\n".join(parts)

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        # A read-only field with `default=None` (`source="box.name"` on a grid without a box, a person on a
        # record nobody decided yet) answers null: say so, or the schema promises a string it does not keep.
        if isinstance(field, serializers.Field) and field.read_only and field.default is None:
            meta["nullable"] = True
        return meta

    def _get_examples(self, serializer, direction, media_type, status_code=None, extras=None):
        found = super()._get_examples(serializer, direction, media_type, status_code, extras)
        if found or not (is_serializer(serializer) or is_list_serializer(serializer)):
            return found
        if media_type and "json" not in media_type and "form" not in media_type:
            return found
        if status_code and not str(status_code).startswith("2"):
            return found
        serializer = force_instance(serializer)
        single = serializer.child if is_list_serializer(serializer) else serializer
        value = example_object(single, direction=direction)
        if is_list_serializer(serializer) or (
            self._is_list_view(serializer) and direction == "response" and self.method == "GET"
        ):
            value = build_listed_example_value(value, self._get_paginator(), direction)
        return build_examples_list([OpenApiExample("Example", value=value)])


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents lims.tokens.ApiTokenAuthentication as HTTP bearer auth (Swagger UI's Authorize button)."""

    target_class = "lims.tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A key from /account/tokens/: `Authorization: Bearer sxt_…`. A read-only token may only GET.",
        }

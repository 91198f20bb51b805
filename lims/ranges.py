"""The one mechanism for physical ranges: one table per app, feeding every place a value is checked.

An app declares its table with `define({...})` (vitrification: blot time, humidity…; grids: seeding
temperature, CO₂…). Model validators (`InRange`), database CheckConstraints (`range_check`), form
fields (`range_form_field`) and API fields (`range_api_field`) are all built from it, so a value
refused in one place is refused in every place with the same message, in the lab's words ("Humidity must
be between 0 and 100 % (the value read was 120)"). `validated()` turns a model's validation into the same what-to-fix error
(a DomainError) in every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.deconstruct import deconstructible
from rest_framework import serializers

from lims.errors import DomainError


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    unit: str = ""
    step: float = 0.1
    integer: bool = False
    # What the lab calls it ("Blot time"), for every message; the field name when left empty.
    label: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"between {self.low:g} and {self.high:g}{unit}"

    def allowed(self) -> str:
        """The short form help texts show: "0–100 %"."""
        return f"{self.low:g}–{self.high:g} {self.unit}".strip()


# Every app's ranges by field name; field names are unique across apps (a clash is refused at import).
RANGES: dict[str, Range] = {}


def define(table: Mapping[str, Range]) -> dict[str, Range]:
    """Register an app's table of ranges and return it."""
    for name, rng in table.items():
        if RANGES.get(name, rng) != rng:
            raise ValueError(f"Two different physical ranges are defined for {name!r}.")
        RANGES[name] = rng
    return dict(table)


def range_label(field: str) -> str:
    return RANGES[field].label or field


def range_message(field: str, value=None) -> str:
    """ "Blot time must be between 0 and 30 s" — and, given the value that was read, "(the form read 45)"."""
    read = "" if value is None else f" (the value read was {value:g})"
    return f"{range_label(field)} must be {RANGES[field].describe()}{read}."


@deconstructible(path="lims.ranges.InRange")
class InRange:
    """Validator: the value lies inside RANGES[field]; the message names the field and the range."""

    code = "out_of_range"

    def __init__(self, field: str):
        if field not in RANGES:
            raise KeyError(f"No physical range is defined for {field!r}.")
        self.field = field

    def __call__(self, value) -> None:
        if value is None:
            return
        rng = RANGES[self.field]
        if not rng.low <= value <= rng.high:
            raise ValidationError(
                range_message(self.field, value).replace("%", "%%"), code=self.code, params={"value": value}
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, InRange) and other.field == self.field

    def __hash__(self) -> int:
        return hash(("InRange", self.field))


def range_check(field: str, *, nullable: bool) -> Q:
    """The CheckConstraint condition for RANGES[field] (NULL allowed when the column is nullable)."""
    rng = RANGES[field]
    inside = Q(**{f"{field}__gte": rng.low, f"{field}__lte": rng.high})
    return inside | Q(**{f"{field}__isnull": True}) if nullable else inside


def range_form_field(
    name: str, *, label: str | None = None, help_text: str = "", required: bool = False, **kwargs
) -> forms.Field:
    """A number input limited to RANGES[name], in the browser (min/max/step) and on the server (InRange)."""
    rng = RANGES[name]
    field_class = forms.IntegerField if rng.integer else forms.FloatField
    return field_class(
        label=label,
        required=required,
        validators=[InRange(name)],
        help_text=f"{help_text}; {rng.allowed()}" if help_text else rng.allowed(),
        widget=forms.NumberInput(
            attrs={"min": f"{rng.low:g}", "max": f"{rng.high:g}", "step": f"{rng.step:g}", "inputmode": "decimal"}
        ),
        **kwargs,
    )


def range_api_field(name: str, **kwargs) -> serializers.Field:
    """An API number field limited to RANGES[name], with the same message as the model and the forms."""
    rng = RANGES[name]
    field_class = serializers.IntegerField if rng.integer else serializers.FloatField
    kwargs.setdefault("help_text", rng.allowed())
    return field_class(validators=[InRange(name)], **kwargs)


def validated(instance, *, exclude: Iterable[str] = ()) -> None:
    """Run the model's validators; refuse with every message at once (each names its field and range)."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        errors = error.message_dict
        field = next(iter(errors))
        text = " ".join(
            message if name in RANGES or name == "__all__" else f"{name.replace('_', ' ')}: {message}"
            for name, messages in errors.items()
            for message in messages
        )
        raise DomainError(text, field=field, details={"errors": errors}) from None

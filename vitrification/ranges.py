"""The one table of physical ranges for vitrification parameters.

Model validators, database CheckConstraints, form fields and API fields are all built from
`RANGES`, so a value refused in one place is refused in every place, with the same message
("humidity_percent must be between 0 and 100 %").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.deconstruct import deconstructible


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    unit: str = ""
    step: float = 0.1

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"between {self.low:g} and {self.high:g}{unit}"


RANGES: dict[str, Range] = {
    # Plunge freezing.
    "blot_time_s": Range(0, 30, "s", 0.5),
    # Vitrobot blot-force scale; other plungers record theirs on the same relative scale or leave it empty.
    "blot_force": Range(-20, 25, "", 1),
    "humidity_percent": Range(0, 100, "%", 1),
    # Vitrobot runs 4–60 °C; a cold-room manual plunger or a Leica GP can sit a little below 4 °C.
    "chamber_temperature_c": Range(-10, 60, "°C", 0.5),
    "wait_time_s": Range(0, 600, "s", 1),
    "sample_volume_ul": Range(0.1, 20, "µL", 0.1),
    # High-pressure freezing: vitrification needs ~2000 bar; HPF machines run at ~2100 bar.
    "pressure_bar": Range(1500, 2500, "bar", 10),
    "cavity_depth_um": Range(10, 300, "µm", 5),
}


def range_message(field: str) -> str:
    return f"{field} must be {RANGES[field].describe()}."


@deconstructible
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
            raise ValidationError(range_message(self.field).replace("%", "%%"), code=self.code, params={"value": value})

    def __eq__(self, other) -> bool:
        return isinstance(other, InRange) and other.field == self.field

    def __hash__(self) -> int:
        return hash(("InRange", self.field))


def range_check(field: str, *, nullable: bool) -> Q:
    """The CheckConstraint condition for RANGES[field] (NULL allowed when the column is nullable)."""
    rng = RANGES[field]
    inside = Q(**{f"{field}__gte": rng.low, f"{field}__lte": rng.high})
    return inside | Q(**{f"{field}__isnull": True}) if nullable else inside

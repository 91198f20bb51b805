"""Seeding's table of physical ranges (the mechanism that applies it everywhere is lims.ranges)."""

from __future__ import annotations

from lims.ranges import Range, define

SEEDING_RANGES: dict[str, Range] = define(
    {
        "passage": Range(0, 200, "", 1, integer=True, label="Passage"),
        "density": Range(0, 1e9, "", 1, label="Density"),
        "incubation_h": Range(0, 720, "h", 0.5, label="Incubation"),
        "temperature_c": Range(4, 45, "°C", 0.5, label="Temperature"),
        "co2_percent": Range(0, 20, "%", 0.5, label="CO₂"),
        "fiducial_size_nm": Range(1, 1000, "nm", 1, label="Fiducial size"),
    }
)

"""Vitrification's table of physical ranges (the mechanism that applies it everywhere is lims.ranges)."""

from __future__ import annotations

from lims.ranges import Range, define

RANGES: dict[str, Range] = define(
    {
        # Plunge freezing.
        "blot_time_s": Range(0, 30, "s", 0.5, label="Blot time"),
        # Vitrobot blot-force scale; other plungers record theirs on the same relative scale or leave it empty.
        "blot_force": Range(-20, 25, "", 1, integer=True, label="Blot force"),
        "humidity_percent": Range(0, 100, "%", 1, label="Humidity"),
        # Vitrobot runs 4–60 °C; a cold-room manual plunger or a Leica GP can sit a little below 4 °C.
        "chamber_temperature_c": Range(-10, 60, "°C", 0.5, label="Chamber temperature"),
        "wait_time_s": Range(0, 600, "s", 1, label="Wait time"),
        "sample_volume_ul": Range(0.1, 20, "µL", 0.1, label="Sample volume"),
        # High-pressure freezing: vitrification needs ~2000 bar; HPF machines run at ~2100 bar.
        "pressure_bar": Range(1500, 2500, "bar", 10, label="Pressure"),
        "cavity_depth_um": Range(10, 300, "µm", 5, label="Cavity depth"),
    }
)

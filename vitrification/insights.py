"""What vitrification adds to the QC dashboard: the method and instrument filters."""

from __future__ import annotations

from grids import insights
from vitrification.models import Instrument, InstrumentKind

_METHODS = {
    InstrumentKind.PLUNGER: "Plunge freezing",
    InstrumentKind.HPF: "High-pressure freezing",
}


def _method_choices(lab_ids):
    return list(_METHODS.items())


def _method_lookups(value: str) -> dict:
    # The summary's method is the kind of the instrument of the grid's run.
    return {"method": value}


def _instrument_choices(lab_ids):
    rows = Instrument.objects.filter(lab_id__in=lab_ids).select_related("lab").order_by("lab__code", "name")
    # The value carries the kind, so links made when it chose the run table keep working.
    return [(f"{i.kind}-{i.pk}", f"{i.name} ({i.lab.code})") for i in rows]


def _instrument_lookups(value: str) -> dict:
    _, _, pk = value.partition("-")
    return {"instrument_id": int(pk)}


def register() -> None:
    from grids.next_steps import next_step_register

    next_step_register("seeded", _seeded)
    insights.filter_register(
        insights.DashboardFilter("method", "Vitrification method", 40, _method_choices, _method_lookups)
    )
    insights.filter_register(
        insights.DashboardFilter("instrument", "Instrument", 50, _instrument_choices, _instrument_lookups)
    )


def _seeded(grid, user):
    from django.urls import reverse

    from grids.next_steps import NextStep

    return NextStep(
        "Freeze it: plunge-freeze (most cell grids) or high-pressure-freeze. A pre-vitrification light-microscopy "
        "check first is optional but shows the cells before they are frozen.",
        f"{reverse('vitrification:plunge-run-create')}?grids={grid.pk}",
        "Plunge-freeze this grid",
        also=[
            ("High-pressure-freeze", f"{reverse('vitrification:hpf-run-create')}?grids={grid.pk}"),
        ],
    )

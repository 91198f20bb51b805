"""The vitrification section of a grid's provenance: the run that froze it, its parameters and outcome."""

from __future__ import annotations

from grids.provenance import when, who
from vitrification.models import GridOutcome

PLUNGE_PARAMETERS = (
    "blot_time_s", "blot_force", "blot_side", "humidity_percent", "chamber_temperature_c", "wait_time_s",
    "sample_volume_ul", "cryogen",
)  # fmt: skip
HPF_PARAMETERS = ("pressure_bar", "carrier_type", "cavity_depth_um", "filler")


def vitrification_section(grid, request=None) -> dict | None:
    outcome = (
        GridOutcome.objects.select_related(
            "plunge_run__instrument",
            "plunge_run__operator",
            "plunge_run__created_by",
            "hpf_run__instrument",
            "hpf_run__operator",
            "hpf_run__created_by",
        )  # fmt: skip
        .filter(grid=grid)
        .first()
    )
    if outcome is None:
        return None
    run = outcome.plunge_run or outcome.hpf_run
    names = PLUNGE_PARAMETERS if outcome.plunge_run_id else HPF_PARAMETERS
    return {
        "kind": "plunge" if outcome.plunge_run_id else "hpf",
        "run": run.pk,
        "instrument": {
            "id": run.instrument_id,
            "name": run.instrument.name,
            "model": run.instrument.model,
            "serial_number": run.instrument.serial_number,
        },  # fmt: skip
        "parameters": {name: getattr(run, name) for name in names},
        "mmcif": run.mmcif(),
        "outcome": outcome.outcome,
        "reason": outcome.reason,
        "notes": run.notes,
        "operator": who(run.operator),
        "performed_at": when(run.performed_at),
        "recorded_by": who(run.created_by),
        "recorded_at": when(run.created_at),
    }

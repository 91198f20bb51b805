"""Every write on vitrification: instruments and runs.

A run is recorded in one transaction, all or nothing: the run, one GridOutcome per grid, and each
grid's move through `grids.services.grids_transition` (seeded → vitrified when ok, → discarded with
the reason when failed: a grid that failed to vitrify is physically lost, since a frozen grid cannot
be thawed and plunged again). Any refusal writes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from grids import insights
from grids.lifecycle import GridState
from grids.models import Grid
from grids.services import grids_transition
from lims import permissions
from lims.errors import ConflictError, DomainError
from lims.models import Lab
from lims.ranges import validated
from vitrification.models import (
    MODELS_BY_KIND,
    GridOutcome,
    HPFRun,
    Instrument,
    InstrumentKind,
    InstrumentModel,
    Outcome,
    PlungeRun,
    VitrificationRun,
)

PLUNGE_FIELDS = (
    "blot_time_s",
    "blot_force",
    "blot_side",
    "humidity_percent",
    "chamber_temperature_c",
    "wait_time_s",
    "sample_volume_ul",
    "cryogen",
    "notes",
)
HPF_FIELDS = ("pressure_bar", "carrier_type", "cavity_depth_um", "filler", "notes")
# A run recorded this far ahead of the server clock is a typo, not a plan.
FUTURE_TOLERANCE = datetime.timedelta(minutes=10)


# --- instruments -----------------------------------------------------------------------------


def instrument_create(
    *,
    lab: Lab,
    name: str,
    kind: str,
    model: str,
    by,
    serial_number: str = "",
    location: str = "",
    active: bool = True,
    notes: str = "",
) -> Instrument:
    permissions.require_member(by, lab)
    if kind not in InstrumentKind.values:
        raise DomainError(f"kind must be one of: {', '.join(InstrumentKind.values)}.", field="kind")
    if model not in MODELS_BY_KIND[kind]:
        fits = InstrumentModel(model).label if model in InstrumentModel.values else model
        raise DomainError(
            f"model: {fits} is not a {InstrumentKind(kind).label.lower()}.",
            field="model",
        )
    instrument = Instrument(
        lab=lab,
        name=(name or "").strip(),
        kind=kind,
        model=model,
        serial_number=serial_number,
        location=location,
        active=active,
        notes=notes,
    )
    validated(instrument)
    try:
        with transaction.atomic():
            instrument.save()
    except IntegrityError:
        raise ConflictError(f"{lab} has an instrument called {instrument.name!r} already.", field="name") from None
    return instrument


def instrument_set_active(*, instrument: Instrument, active: bool, by) -> Instrument:
    """Retire an instrument (it keeps its runs) or bring it back."""
    permissions.require_member(by, instrument.lab_id)
    instrument.active = active
    instrument._change_reason = "brought back into use" if active else "retired"
    instrument.save(update_fields=["active"])
    return instrument


# --- runs ------------------------------------------------------------------------------------


def plunge_run_record(
    *,
    grids: Iterable[Grid],
    instrument: Instrument,
    by,
    lab: Lab | None = None,
    outcomes: Sequence[Mapping[str, Any]] | None = None,
    operator=None,
    performed_at: datetime.datetime | None = None,
    **params,
) -> PlungeRun:
    """Plunge-freeze `grids` with one set of parameters; every grid is ok unless `outcomes` says otherwise.

    `outcomes`: [{"grid": Grid or id, "outcome": "ok" | "failed", "reason": "…"}]. A refusal
    (a grid not seeded, of another lab, a value out of range, an HPF instrument) writes nothing.
    """
    return _run_record(
        PlungeRun,
        PLUNGE_FIELDS,
        grids=grids,
        instrument=instrument,
        by=by,
        lab=lab,
        outcomes=outcomes,
        operator=operator,
        performed_at=performed_at,
        params=params,
    )


def hpf_run_record(
    *,
    grids: Iterable[Grid],
    instrument: Instrument,
    by,
    lab: Lab | None = None,
    outcomes: Sequence[Mapping[str, Any]] | None = None,
    operator=None,
    performed_at: datetime.datetime | None = None,
    **params,
) -> HPFRun:
    """High-pressure-freeze `grids`; the same rules as `plunge_run_record`."""
    return _run_record(
        HPFRun,
        HPF_FIELDS,
        grids=grids,
        instrument=instrument,
        by=by,
        lab=lab,
        outcomes=outcomes,
        operator=operator,
        performed_at=performed_at,
        params=params,
    )


def _run_record(
    run_model: type[VitrificationRun],
    allowed: Sequence[str],
    *,
    grids: Iterable[Grid],
    instrument: Instrument,
    by,
    lab: Lab | None,
    outcomes: Sequence[Mapping[str, Any]] | None,
    operator,
    performed_at: datetime.datetime | None,
    params: dict,
) -> VitrificationRun:
    grids = list(grids)
    unknown = set(params) - set(allowed)
    if unknown:
        raise DomainError(f"Unknown {run_model.label} field(s): {', '.join(sorted(unknown))}.")
    if not grids:
        raise DomainError("grids: select at least one grid.", field="grids")
    if len({g.pk for g in grids}) != len(grids):
        raise DomainError("grids: a grid is listed twice.", field="grids")

    lab_id = lab.pk if lab is not None else instrument.lab_id
    permissions.require_member(by, lab_id)
    if instrument.lab_id != lab_id:
        raise DomainError(f"instrument: {instrument.name} belongs to another lab.", field="instrument")
    if instrument.kind != run_model.kind:
        raise DomainError(
            f"instrument: {instrument.name} is a {instrument.get_kind_display().lower()}; "
            f"{run_model.a_label} needs a {InstrumentKind(run_model.kind).label.lower()}.",
            field="instrument",
        )
    if not instrument.active:
        raise DomainError(f"instrument: {instrument.name} is retired.", field="instrument")
    foreign = [g.barcode for g in grids if g.lab_id != lab_id]
    if foreign:
        raise DomainError(f"grids: {', '.join(foreign)} belong to another lab.", field="grids")

    operator = operator or by
    if operator != by and not permissions.is_member(operator, lab_id):
        raise DomainError(f"operator: {operator} is not a member of this lab.", field="operator")
    performed_at = performed_at or timezone.now()
    if performed_at > timezone.now() + FUTURE_TOLERANCE:
        raise DomainError("performed_at lies in the future.", field="performed_at")

    verdicts = _outcomes_by_grid(grids, outcomes or ())

    run = run_model(
        lab_id=lab_id,
        instrument=instrument,
        operator=operator,
        performed_at=performed_at,
        created_by=by,
        **{k: v for k, v in params.items() if v is not None},
    )
    validated(run)

    with transaction.atomic():
        run.save()
        # Only seeded grids are vitrified or fail to be: a precondition checked by the lifecycle under
        # its own row lock (the map alone would let a registered grid be discarded).
        ok = [g for g in grids if verdicts[g.pk][0] == Outcome.OK]
        failed = [g for g in grids if verdicts[g.pk][0] == Outcome.FAILED]
        if ok:
            grids_transition(
                grids=ok, to_state=GridState.VITRIFIED, by=by, cause=run.cause, from_states={GridState.SEEDED}
            )
        for grid in failed:
            grids_transition(
                grids=[grid],
                to_state=GridState.DISCARDED,
                by=by,
                reason=f"failed: {verdicts[grid.pk][1]}",
                cause=run.cause,
                from_states={GridState.SEEDED},
                refuse_as=GridState.VITRIFIED,
            )
        run_field = "plunge_run" if run_model is PlungeRun else "hpf_run"
        for grid in grids:
            outcome, reason = verdicts[grid.pk]
            GridOutcome(grid=grid, outcome=outcome, reason=reason, **{run_field: run}).save()
        insights.grid_facts_changed(g.pk for g in grids)
    return run


def _outcomes_by_grid(grids: Sequence[Grid], outcomes: Iterable[Mapping[str, Any]]) -> dict[int, tuple[str, str]]:
    """{grid id: (outcome, reason)}: ok for every grid unless an entry says otherwise."""
    by_id = {g.pk: g for g in grids}
    verdicts: dict[int, tuple[str, str]] = {pk: (Outcome.OK, "") for pk in by_id}
    seen: set[int] = set()
    for entry in outcomes:
        grid = entry.get("grid")
        pk = grid.pk if isinstance(grid, Grid) else grid
        try:
            pk = int(pk)
        except (TypeError, ValueError):
            raise DomainError(f"outcomes: {grid!r} is not a grid id.", field="outcomes") from None
        if pk not in by_id:
            raise DomainError(f"outcomes: grid {pk} is not one of the run's grids.", field="outcomes")
        if pk in seen:
            raise DomainError(f"outcomes: grid {by_id[pk].barcode} has two outcomes.", field="outcomes")
        seen.add(pk)
        outcome = entry.get("outcome") or Outcome.OK
        if outcome not in Outcome.values:
            raise DomainError(
                f"outcomes: {outcome!r} is not an outcome; use {' or '.join(Outcome.values)}.", field="outcomes"
            )
        reason = (entry.get("reason") or "").strip()
        if outcome == Outcome.FAILED and not reason:
            raise DomainError(f"outcomes: say why {by_id[pk].barcode} failed.", field="outcomes")
        verdicts[pk] = (outcome, reason if outcome == Outcome.FAILED else "")
    return verdicts

"""Every write on grids: lots, registration, the lifecycle, storage, cell lines, seeding."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Sequence

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from grids import insights, lifecycle
from grids.lifecycle import GRID_LIFECYCLE, GridState
from grids.models import (
    CellLine,
    Grid,
    GridLot,
    GridTransition,
    GridType,
    SeededGrid,
    Seeding,
    StorageBox,
)
from lims import permissions
from lims.errors import ConflictError, DomainError
from lims.lifecycle import transition
from lims.models import Lab
from lims.ranges import validated

MAX_REGISTER = 1000


# --- lots and registration -------------------------------------------------------------------


def grid_lot_create(
    *,
    lab: Lab,
    grid_type: GridType,
    lot_number: str,
    quantity: int,
    by,
    vendor: str = "",
    received_on: datetime.date | None = None,
    expires_on: datetime.date | None = None,
    notes: str = "",
) -> GridLot:
    permissions.require_member(by, lab)
    if quantity is None or quantity < 1:
        raise DomainError("quantity: a lot holds at least 1 grid.", field="quantity")
    if received_on and expires_on and expires_on < received_on:
        raise DomainError("expires_on: the expiry date lies before the date received.", field="expires_on")
    lot = GridLot(
        lab=lab,
        grid_type=grid_type,
        lot_number=lot_number.strip(),
        quantity=quantity,
        quantity_left=quantity,
        vendor=vendor or grid_type.vendor,
        received_on=received_on,
        expires_on=expires_on,
        notes=notes,
        created_by=by,
    )
    validated(lot)
    try:
        with transaction.atomic():
            lot.save()
    except IntegrityError:
        raise ConflictError(
            f"Lot {lot.lot_number} of {grid_type} is registered in {lab} already.", field="lot_number"
        ) from None
    return lot


def grids_register(*, lot: GridLot, count: int, by, box: StorageBox | None = None) -> list[Grid]:
    """Register `count` grids from a lot in one transaction: unique barcodes, the lot decremented.

    Race-safe: the lot is decremented with a conditional UPDATE that must match exactly one row, so
    two registrations can never take more grids than the lot holds.
    """
    permissions.require_member(by, lot.lab_id)
    if not isinstance(count, int) or count < 1:
        raise DomainError("count: register at least 1 grid.", field="count")
    if count > MAX_REGISTER:
        raise DomainError(f"count: at most {MAX_REGISTER} grids in one registration.", field="count")
    with transaction.atomic():
        taken = GridLot.objects.filter(pk=lot.pk, quantity_left__gte=count).update(
            quantity_left=F("quantity_left") - count
        )
        lot.refresh_from_db(fields=["quantity_left", "quantity"])
        if taken != 1:
            raise ConflictError(
                f"Lot {lot.lot_number} has {lot.quantity_left} grid(s) left; cannot register {count}.",
                field="count",
                details={"quantity_left": lot.quantity_left},
            )
        # Sequence numbers continue from what this lot had issued before this registration.
        first = lot.quantity - lot.quantity_left - count + 1
        prefix = f"{lot.lab.code}-{lot.pk:04d}"
        grids = [
            Grid(barcode=f"{prefix}-{first + i:03d}", lab_id=lot.lab_id, lot=lot, registered_by=by)
            for i in range(count)
        ]
        for grid in grids:
            grid.save()
        GridTransition.objects.bulk_create(
            [
                GridTransition(
                    grid=g, from_state="", to_state=GridState.REGISTERED, by=by, cause=f"lot {lot.lot_number}"
                )
                for g in grids
            ]
        )
        if box is not None:
            grids_move(grids=grids, box=box, by=by)
        insights.grid_facts_changed(g.pk for g in grids)
    return grids


# --- the lifecycle ---------------------------------------------------------------------------


def grid_transition(
    *, grid: Grid, to_state: str, by, reason: str = "", cause: str = "", authorized: bool = False
) -> Grid:
    """Move one grid to `to_state`, or refuse with ConflictError and change nothing."""
    return grids_transition(grids=[grid], to_state=to_state, by=by, reason=reason, cause=cause, authorized=authorized)[
        0
    ]


def grids_transition(
    *,
    grids: Sequence[Grid],
    to_state: str,
    by,
    reason: str = "",
    cause: str = "",
    authorized: bool = False,
    from_states: Collection[str] | None = None,
    refuse_as: str | None = None,
) -> list[Grid]:
    """Move every grid to `to_state` in one transaction; if any move is illegal, none happens.

    The one place that changes a grid's state, through lims.lifecycle.transition: rows locked, state
    re-read, the map and `from_states` (a precondition, refused as if asked to become `refuse_as`)
    checked under the lock, a GridTransition (from, to, who, when, why) per move.

    `authorized=True` says the calling service has checked that `by` may act on these grids by
    another right than lab membership (facility staff receiving a shipment); the map still applies.
    """
    GRID_LIFECYCLE.require_known(
        to_state, message=f"Unknown state {to_state!r}; states are: {', '.join(GridState.values)}."
    )
    ids = [g.pk for g in grids]
    if not ids:
        raise DomainError("Select at least one grid.", field="grids")
    if len(set(ids)) != len(ids):
        raise DomainError("A grid is selected twice.", field="grids")
    if to_state == GridState.DISCARDED and not reason.strip():
        raise DomainError("reason: say why the grid is discarded.", field="reason")
    now = timezone.now()

    def leave_storage(grid: Grid) -> None:
        grid.updated_at = now
        if to_state == GridState.DISCARDED:
            grid.box, grid.slot = None, None

    # The move and the dashboard's summary of the grids in one transaction.
    with transaction.atomic():
        locked = transition(
            lifecycle=GRID_LIFECYCLE,
            queryset=Grid.objects.all(),
            ids=ids,
            to_state=to_state,
            audit=lambda grid, was: GridTransition(
                grid=grid, from_state=was, to_state=to_state, by=by, reason=reason, cause=cause
            ),
            from_states=from_states,
            refuse_as=refuse_as,
            check=None if authorized else (lambda grid: permissions.require_member(by, grid.lab_id)),
            on_move=leave_storage,
            name=lambda grid: grid.barcode,
            change_reason=reason or cause or f"state → {to_state}",
        )
        insights.grid_facts_changed(ids)
    # Hand the caller the fresh rows, in the order given.
    for original in grids:
        fresh = locked[original.pk]
        original.state, original.box_id, original.slot = fresh.state, fresh.box_id, fresh.slot
    return [locked[pk] for pk in ids]


def grid_discard(*, grid: Grid, by, reason: str) -> Grid:
    return grid_transition(grid=grid, to_state=GridState.DISCARDED, by=by, reason=reason)


def grid_update_notes(*, grid: Grid, notes: str, by) -> Grid:
    permissions.require_member(by, grid.lab_id)
    grid.notes = notes
    grid._change_reason = "notes edited"
    grid.save(update_fields=["notes", "updated_at"])
    return grid


# --- storage ---------------------------------------------------------------------------------


def storage_box_create(*, lab: Lab, name: str, capacity: int, by, location: str = "", barcode: str = "") -> StorageBox:
    permissions.require_member(by, lab)
    box = StorageBox(lab=lab, name=name.strip(), capacity=capacity, location=location, barcode=barcode or "pending")
    validated(box)
    try:
        with transaction.atomic():
            box.save()
            if not barcode:
                box.barcode = f"{lab.code}-BOX-{box.pk:04d}"
                box.save(update_fields=["barcode"])
    except IntegrityError:
        raise ConflictError(f"{lab} has a box called {name!r}, or the barcode is taken.", field="name") from None
    return box


def grids_move(*, grids: Sequence[Grid], box: StorageBox | None, by, slots: Sequence[int] | None = None) -> list[Grid]:
    """Put many grids into a box in one action (given slots, or the lowest free ones); box=None
    takes them out of storage. All or nothing: a taken slot or a full box moves no grid."""
    ids = [g.pk for g in grids]
    if not ids:
        raise DomainError("Select at least one grid.", field="grids")
    if len(set(ids)) != len(ids):
        raise DomainError("A grid is selected twice.", field="grids")
    if slots is not None and len(slots) != len(ids):
        raise DomainError("Give one slot per grid.", field="slots")
    with transaction.atomic():
        locked = {g.pk: g for g in Grid.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        for grid in locked.values():
            permissions.require_member(by, grid.lab_id)
            if box is not None and grid.lab_id != box.lab_id:
                raise DomainError(f"{grid.barcode} belongs to another lab than box {box.name}.", field="box")
            if grid.state not in lifecycle.IN_STORAGE:
                raise ConflictError(f"{grid.barcode} is {grid.state}: it is not in the lab to be stored.")
        if box is None:
            for grid in locked.values():
                grid.box, grid.slot = None, None
                grid._change_reason = "taken out of storage"
                grid.save()
            return [locked[pk] for pk in ids]
        StorageBox.objects.select_for_update().filter(pk=box.pk).first()
        occupied = dict(Grid.objects.filter(box=box).exclude(pk__in=ids).values_list("slot", "barcode"))
        if slots is None:
            free = [s for s in range(1, box.capacity + 1) if s not in occupied]
            if len(free) < len(ids):
                raise ConflictError(
                    f"Box {box.name} has {len(free)} free slot(s); {len(ids)} grid(s) do not fit.", field="box"
                )
            slots = free[: len(ids)]
        else:
            if len(set(slots)) != len(slots):
                raise DomainError("Two grids cannot share a slot.", field="slots")
            for slot in slots:
                if not 1 <= slot <= box.capacity:
                    raise DomainError(
                        f"Slot {slot} does not exist: box {box.name} has slots 1–{box.capacity}.", field="slots"
                    )
                if slot in occupied:
                    raise ConflictError(f"Slot {slot} of box {box.name} holds {occupied[slot]}.", field="slots")
        # Clear first so grids swapping slots within the box never collide on the unique constraint.
        Grid.objects.filter(pk__in=ids).update(box=None, slot=None)
        for pk, slot in zip(ids, slots, strict=True):
            grid = locked[pk]
            grid.box, grid.slot = box, slot
            grid._change_reason = f"stored in {box.name} slot {slot}"
            grid.save()
    return [locked[pk] for pk in ids]


# --- cell lines and seeding ------------------------------------------------------------------


def cell_line_create(
    *, lab: Lab, name: str, organism: str, by, biosafety_level: int = 1, source: str = "", notes: str = ""
) -> CellLine:
    permissions.require_member(by, lab)
    line = CellLine(
        lab=lab, name=name.strip(), organism=organism, biosafety_level=biosafety_level, source=source, notes=notes
    )
    validated(line)
    try:
        with transaction.atomic():
            line.save()
    except IntegrityError:
        raise ConflictError(f"{lab} has a cell line called {name!r} already.", field="name") from None
    return line


SEEDING_FIELDS = (
    "passage",
    "density",
    "density_unit",
    "medium",
    "incubation_h",
    "temperature_c",
    "co2_percent",
    "treatments",
    "fluorescent_labels",
    "fiducial_kind",
    "fiducial_size_nm",
    "fiducial_dilution",
    "notes",
)


def seeding_record(
    *,
    grids: Iterable[Grid],
    cell_line: CellLine,
    by,
    operator=None,
    seeded_at: datetime.datetime | None = None,
    **params,
) -> Seeding:
    """Record cells seeded on one or many grids; each grid moves registered → seeded.

    All or nothing: a bad value, a grid of another lab or a grid that is not `registered` refuses
    the whole seeding.
    """
    grids = list(grids)
    unknown = set(params) - set(SEEDING_FIELDS)
    if unknown:
        raise DomainError(f"Unknown seeding field(s): {', '.join(sorted(unknown))}.")
    if not grids:
        raise DomainError("grids: select at least one grid to seed.", field="grids")
    lab_id = cell_line.lab_id
    permissions.require_member(by, lab_id)
    foreign = [g.barcode for g in grids if g.lab_id != lab_id]
    if foreign:
        raise DomainError(f"grids: {', '.join(foreign)} belong to another lab than the cell line.", field="grids")
    seeding = Seeding(
        lab_id=lab_id,
        cell_line=cell_line,
        operator=operator or by,
        seeded_at=seeded_at or timezone.now(),
        **{k: v for k, v in params.items() if v is not None},
    )
    if seeding.fiducial_kind and seeding.fiducial_size_nm is None:
        raise DomainError("fiducial_size_nm: give the fiducials' size in nm.", field="fiducial_size_nm")
    validated(seeding)
    with transaction.atomic():
        seeding.save()
        grids_transition(grids=grids, to_state=GridState.SEEDED, by=by, cause=f"seeding {seeding.pk}")
        SeededGrid.objects.bulk_create([SeededGrid(seeding=seeding, grid=g) for g in grids])
        insights.grid_facts_changed(g.pk for g in grids)
    return seeding

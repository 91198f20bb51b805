"""The grid's lifecycle: its states and the one map of allowed moves.

`grids.services.grids_transition` is the only code that changes a grid's state, and it consults
this map. Moves into `discarded` are allowed from every state before `imaged`.
"""

from __future__ import annotations

from django.db import models

from lims.lifecycle import Lifecycle


class GridState(models.TextChoices):
    REGISTERED = "registered", "Registered"
    SEEDED = "seeded", "Seeded"
    VITRIFIED = "vitrified", "Vitrified"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    SCHEDULED = "scheduled", "Scheduled"
    SHIPPED = "shipped", "Shipped"
    IMAGED = "imaged", "Imaged"
    ARCHIVED = "archived", "Archived"
    DISCARDED = "discarded", "Discarded"


S = GridState

# from-state -> the states it may move to (besides `discarded`, added below).
_FORWARD: dict[str, set[str]] = {
    S.REGISTERED: {S.SEEDED},
    S.SEEDED: {S.VITRIFIED},
    # The QC decision; a reviewer may revise it.
    S.VITRIFIED: {S.ACCEPTED, S.REJECTED, S.SCHEDULED},
    S.ACCEPTED: {S.REJECTED, S.SCHEDULED},
    S.REJECTED: {S.ACCEPTED, S.SCHEDULED},
    # Taken off a sample sheet before shipping: back to the state it was scheduled from
    # (vitrified or rejected ones got there through a reviewer's override).
    S.SCHEDULED: {S.SHIPPED, S.ACCEPTED, S.VITRIFIED, S.REJECTED},
    # Returned from the beamline without being imaged.
    S.SHIPPED: {S.IMAGED, S.SCHEDULED, S.ACCEPTED},
    S.IMAGED: {S.ARCHIVED},
    S.ARCHIVED: set(),
    S.DISCARDED: set(),
}

DISCARDABLE: frozenset[str] = frozenset(
    {S.REGISTERED, S.SEEDED, S.VITRIFIED, S.ACCEPTED, S.REJECTED, S.SCHEDULED, S.SHIPPED}
)

ALLOWED: dict[str, frozenset[str]] = {
    state: frozenset(targets | ({S.DISCARDED} if state in DISCARDABLE else set()))
    for state, targets in _FORWARD.items()
}


# Taken off a sample sheet before shipping, a grid goes back to the state it was scheduled from when
# the map allows it (vitrified or rejected ones got there through a reviewer's override), else to accepted.
def unscheduled_state(state_before: str) -> str:
    """Where a scheduled grid falls back to when it leaves its last open sample sheet."""
    if state_before and state_before != S.SCHEDULED and state_before in _FORWARD[S.SCHEDULED]:
        return state_before
    return S.ACCEPTED


# Back from the beamline without being imaged: in the lab's pool of accepted grids again.
RETURNED_UNIMAGED: str = S.ACCEPTED

# States in which a grid still physically exists in the lab's storage.
IN_STORAGE: frozenset[str] = frozenset({S.REGISTERED, S.SEEDED, S.VITRIFIED, S.ACCEPTED, S.REJECTED, S.SCHEDULED})


# The grid's lifecycle in the one mechanism of lims.lifecycle (grids.services.grids_transition applies it).
GRID_LIFECYCLE = Lifecycle(noun="grid", states=GridState, moves=ALLOWED)
can_move = GRID_LIFECYCLE.can_move
refusal = GRID_LIFECYCLE.refusal

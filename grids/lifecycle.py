"""The grid's lifecycle: its states and the one map of allowed moves.

`grids.services.grid_transition` is the only code that changes a grid's state, and it consults
this map. Moves into `discarded` are allowed from every state before `imaged`.
"""

from __future__ import annotations

from django.db import models


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

# States in which a grid still physically exists in the lab's storage.
IN_STORAGE: frozenset[str] = frozenset({S.REGISTERED, S.SEEDED, S.VITRIFIED, S.ACCEPTED, S.REJECTED, S.SCHEDULED})


def can_move(from_state: str, to_state: str) -> bool:
    return to_state in ALLOWED.get(from_state, frozenset())


def refusal(from_state: str, to_state: str) -> str:
    """The message for a refused move: what the grid is, and where it could go instead."""
    allowed = sorted(ALLOWED.get(from_state, ()))
    where = ", ".join(GridState(s).label.lower() for s in allowed) if allowed else "nowhere (final state)"
    state = GridState(from_state).label.lower()
    article = "An" if state[0] in "aeiou" else "A"
    return (
        f"{article} {state} grid cannot become {GridState(to_state).label.lower()}; "
        f"from {GridState(from_state).label.lower()} it can go to: {where}."
    )

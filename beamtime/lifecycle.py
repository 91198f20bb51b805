"""The one map of allowed moves for sessions and for shipments (grids have theirs in grids.lifecycle)."""

from __future__ import annotations

from beamtime.models import SessionStatus, ShipmentStatus

SS = SessionStatus
SESSION_ALLOWED: dict[str, frozenset[str]] = {
    SS.PLANNED: frozenset({SS.CONFIRMED, SS.CANCELLED}),
    SS.CONFIRMED: frozenset({SS.RUNNING, SS.PLANNED, SS.CANCELLED}),
    SS.RUNNING: frozenset({SS.FINISHED}),
    SS.FINISHED: frozenset(),
    SS.CANCELLED: frozenset(),
}

# Sessions that hold their beamline time (a cancelled one frees it).
ACTIVE_SESSION: frozenset[str] = frozenset({SS.PLANNED, SS.CONFIRMED, SS.RUNNING})
# Sessions whose sample sheet may still change (subject to the freeze deadline).
SHEET_OPEN: frozenset[str] = frozenset({SS.PLANNED, SS.CONFIRMED})

SH = ShipmentStatus
SHIPMENT_ALLOWED: dict[str, frozenset[str]] = {
    SH.PREPARED: frozenset({SH.SHIPPED}),
    SH.SHIPPED: frozenset({SH.RECEIVED}),
    SH.RECEIVED: frozenset({SH.RETURNED}),
    SH.RETURNED: frozenset(),
}


def _refusal(kind: str, choices, allowed: dict, from_status: str, to_status: str) -> str:
    targets = sorted(allowed.get(from_status, ()))
    where = ", ".join(choices(s).label.lower() for s in targets) if targets else "nowhere (final status)"
    return (
        f"A {choices(from_status).label.lower()} {kind} cannot become {choices(to_status).label.lower()}; "
        f"from {choices(from_status).label.lower()} it can go to: {where}."
    )


def session_can_move(from_status: str, to_status: str) -> bool:
    return to_status in SESSION_ALLOWED.get(from_status, frozenset())


def session_refusal(from_status: str, to_status: str) -> str:
    return _refusal("session", SessionStatus, SESSION_ALLOWED, from_status, to_status)


def shipment_can_move(from_status: str, to_status: str) -> bool:
    return to_status in SHIPMENT_ALLOWED.get(from_status, frozenset())


def shipment_refusal(from_status: str, to_status: str) -> str:
    return _refusal("shipment", ShipmentStatus, SHIPMENT_ALLOWED, from_status, to_status)

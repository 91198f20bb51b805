"""The one map of allowed moves for sessions and for shipments (grids have theirs in grids.lifecycle)."""

from __future__ import annotations

from beamtime.models import SessionStatus, ShipmentStatus
from lims.lifecycle import Lifecycle

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


# Both in the one mechanism of lims.lifecycle (beamtime.services applies them with its transition()).
SESSION_LIFECYCLE = Lifecycle(noun="session", states=SessionStatus, moves=SESSION_ALLOWED, word="status")
SHIPMENT_LIFECYCLE = Lifecycle(noun="shipment", states=ShipmentStatus, moves=SHIPMENT_ALLOWED, word="status")

session_can_move = SESSION_LIFECYCLE.can_move
session_refusal = SESSION_LIFECYCLE.refusal
shipment_can_move = SHIPMENT_LIFECYCLE.can_move
shipment_refusal = SHIPMENT_LIFECYCLE.refusal

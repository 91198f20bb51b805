"""The beamtime sections of a grid's provenance: the sample sheets it was on (with the gate's evaluation
at the time and any override), their sessions, and the shipments that carried it."""

from __future__ import annotations

from django.db.models import Prefetch

from beamtime.models import SampleSheetEntry, SessionTransition, ShipmentGrid, ShipmentTransition
from grids.provenance import when, who


def _transitions(rows) -> list[dict]:
    return [
        {
            "from_status": t.from_status or None,
            "to_status": t.to_status,
            "reason": t.reason,
            "by": who(t.by),
            "at": when(t.at),
        }  # fmt: skip
        for t in rows
    ]


def sample_sheets_section(grid, request=None) -> list[dict]:
    """Each sheet entry of the grid, with its session, the gate evaluation and who added it."""
    entries = (
        SampleSheetEntry.objects.filter(grid=grid)
        .select_related(
            "session__beamline__facility",
            "session__proposal",
            "session__created_by",
            "session__local_contact",
            "added_by",
            "override_by",
        )  # fmt: skip
        .prefetch_related(
            Prefetch("session__transitions", queryset=SessionTransition.objects.select_related("by").order_by("at"))
        )
        .order_by("added_at", "pk")
    )
    out = []
    for entry in entries:
        session = entry.session
        out.append(
            {
                "entry": entry.pk,
                "position": entry.position,
                "grid_state_before": entry.grid_state_before or None,
                "gate": {
                    "passed": entry.gate_passed,
                    "evaluation": entry.gate_evaluation,
                    "override_reason": entry.override_reason or None,
                    "override_by": who(entry.override_by),
                },
                "added_by": who(entry.added_by),
                "added_at": when(entry.added_at),
                "session": {
                    "id": session.pk,
                    "facility": session.beamline.facility.short_name,
                    "beamline": {
                        "id": session.beamline_id,
                        "code": session.beamline.code,
                        "name": session.beamline.name,
                        "photon_energy_ev": session.beamline.photon_energy_ev,
                    },
                    "proposal": {
                        "id": session.proposal_id,
                        "number": session.proposal.number,
                        "title": session.proposal.title,
                        "principal_investigator": session.proposal.principal_investigator,
                    },
                    "start": when(session.start),
                    "end": when(session.end),
                    "status": session.status,
                    "local_contact": who(session.local_contact),
                    "scheduled_by": who(session.created_by),
                    "scheduled_at": when(session.created_at),
                    "transitions": _transitions(session.transitions.all()),
                },
            }  # fmt: skip
        )
    return out


def gate_evaluations_section(grid, request=None) -> list[dict]:
    """Every gate evaluation recorded for the grid (one per sample-sheet admission), oldest first."""
    entries = (
        SampleSheetEntry.objects.filter(grid=grid)
        .select_related("session__beamline", "added_by", "override_by")
        .order_by("added_at", "pk")
    )
    return [
        {
            "session": e.session_id,
            "beamline": e.session.beamline.code,
            "passed": e.gate_passed,
            "rules": e.gate_evaluation,
            "override_reason": e.override_reason or None,
            "override_by": who(e.override_by),
            "evaluated_by": who(e.added_by),
            "evaluated_at": when(e.added_at),
        }  # fmt: skip
        for e in entries
    ]


def shipments_section(grid, request=None) -> list[dict]:
    items = (
        ShipmentGrid.objects.filter(grid=grid)
        .select_related("shipment__created_by")
        .prefetch_related(
            Prefetch("shipment__transitions", queryset=ShipmentTransition.objects.select_related("by").order_by("at"))
        )
        .order_by("shipment__created_at", "pk")
    )
    return [
        {
            "id": item.shipment_id,
            "session": item.shipment.session_id,
            "dewar": item.shipment.dewar,
            "courier": item.shipment.courier,
            "tracking_number": item.shipment.tracking_number,
            "status": item.shipment.status,
            "packed_in": {"box_name": item.box_name, "box_barcode": item.box_barcode, "slot": item.slot},
            "created_by": who(item.shipment.created_by),
            "created_at": when(item.shipment.created_at),
            "shipped_at": when(item.shipment.shipped_at),
            "received_at": when(item.shipment.received_at),
            "returned_at": when(item.shipment.returned_at),
            "transitions": _transitions(item.shipment.transitions.all()),
        }
        for item in items
    ]

"""Read queries of beamtime shared by pages and the API (lab- and facility-scoped)."""

from __future__ import annotations

import datetime

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from beamtime import access, quality
from beamtime.models import (
    Beamline,
    BeamtimeSession,
    Facility,
    Proposal,
    QualityPolicy,
    SampleSheetEntry,
    SessionStatus,
    Shipment,
)
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions


def facility_list() -> QuerySet[Facility]:
    return Facility.objects.prefetch_related("beamlines")


def beamline_list() -> QuerySet[Beamline]:
    return Beamline.objects.select_related("facility", "quality_policy")


def proposal_list(*, user) -> QuerySet[Proposal]:
    qs = Proposal.objects.select_related("facility", "lab", "created_by")
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(Q(lab__in=permissions.lab_ids(user)) | Q(facility__in=access.staff_facility_ids(user)))


def session_list(*, user, filters: dict | None = None) -> QuerySet[BeamtimeSession]:
    """Sessions of the user's labs and of the beamlines they staff, with what a list row shows."""
    qs = access.scope_sessions(BeamtimeSession.objects.all(), user).select_related(
        "beamline__facility", "proposal", "lab", "local_contact"
    )
    qs = qs.annotate(entry_count=Count("entries", distinct=True)).order_by("start", "id")
    filters = filters or {}
    if beamline := filters.get("beamline"):
        qs = qs.filter(beamline_id=beamline)
    if lab := filters.get("lab"):
        qs = qs.filter(lab_id=lab)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if start := filters.get("start"):
        qs = qs.filter(end__gt=start)
    if end := filters.get("end"):
        qs = qs.filter(start__lt=end)
    return qs


def session_get(*, user, pk: int) -> BeamtimeSession:
    return get_object_or_404(session_list(user=user), pk=pk)


def sessions_between(
    *, user, start: datetime.datetime, end: datetime.datetime, beamline: int | None = None, lab: int | None = None
) -> list[BeamtimeSession]:
    """Sessions that touch [start, end), for the calendar; cancelled ones included (shown struck through)."""
    return list(session_list(user=user, filters={"start": start, "end": end, "beamline": beamline, "lab": lab}))


def sheet_entries(*, session: BeamtimeSession) -> QuerySet[SampleSheetEntry]:
    return session.entries.select_related("grid__lot__grid_type", "grid__box", "added_by", "override_by").order_by(
        "position"
    )


def sample_sheet_entry_list(*, user) -> QuerySet[SampleSheetEntry]:
    return access.scope_sessions(SampleSheetEntry.objects.all(), user, prefix="session__").select_related(
        "session__beamline__facility", "grid", "added_by", "override_by"
    )


def shipment_list(*, user) -> QuerySet[Shipment]:
    return (
        access.scope_sessions(Shipment.objects.all(), user, prefix="session__")
        .select_related("session__beamline__facility", "lab", "created_by")
        .annotate(grid_count=Count("items", distinct=True))
        .order_by("-created_at", "-id")
    )


def shipment_get(*, user, pk: int) -> Shipment:
    return get_object_or_404(shipment_list(user=user), pk=pk)


def shipment_items(*, shipment: Shipment):
    return shipment.items.select_related("grid__lot__grid_type").order_by("box_name", "slot", "grid__barcode")


def quality_policy_list() -> QuerySet[QualityPolicy]:
    return (
        QualityPolicy.objects.select_related("beamline__facility", "updated_by")
        .prefetch_related("rules")
        .order_by("beamline__facility__short_name", "beamline__name", "pk")
    )


def session_targets(*, session: BeamtimeSession) -> list[dict]:
    """The beamline's navigation list: every target of every grid on the sheet, by holder position."""
    rows = []
    for entry in sheet_entries(session=session):
        for target in quality.grid_targets(entry.grid):
            offset = target.get("offset_um")
            rows.append(
                {
                    "position": entry.position,
                    "grid": entry.grid.barcode,
                    "grid_id": entry.grid_id,
                    "square": target.get("square") or "",
                    "offset_x_um": None if offset is None else round(float(offset[0]), 2) + 0.0,
                    "offset_y_um": None if offset is None else round(float(offset[1]), 2) + 0.0,
                    "label": target.get("label") or "",
                    "priority": target.get("priority"),
                }
            )
    return rows


def active_statuses() -> list[str]:
    return [s for s in SessionStatus.values if s != SessionStatus.CANCELLED]


# Grids that can go on a sheet: the lab's vitrified, accepted, rejected or already scheduled grids.
SHEET_ADDABLE_STATES = (GridState.ACCEPTED, GridState.VITRIFIED, GridState.REJECTED, GridState.SCHEDULED)


def sheet_candidate_grids(*, session: BeamtimeSession, user) -> QuerySet[Grid]:
    """The grids `user` may name for `session`'s sample sheet, whatever their state.

    Members of the session's lab (and superusers): the lab's grids. Facility staff who are not members:
    only grids already on sample sheets at their facilities; never the lab's other grids, nor grids
    booked at another facility, nor their gate values."""
    grids = Grid.objects.filter(lab_id=session.lab_id)
    if not (getattr(user, "is_superuser", False) or permissions.is_member(user, session.lab_id)):
        grids = grids.filter(pk__in=SampleSheetEntry.objects.filter(
            session__beamline__facility__in=access.staff_facility_ids(user)
        ).values("grid_id"))  # fmt: skip
    return grids


def sheet_addable_grids(*, session: BeamtimeSession, user) -> QuerySet[Grid]:
    """The candidates that the "add a grid" and "check against the gate" lists offer."""
    grids = sheet_candidate_grids(session=session, user=user)
    return (
        grids.filter(state__in=SHEET_ADDABLE_STATES).exclude(sample_sheet_entries__session=session).order_by("barcode")
    )

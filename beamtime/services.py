"""Every write in beamtime: bookings, session and shipment transitions, the gate, sample sheets, feeds.

Race safety: a booking locks its beamline row (then the proposal row) for the length of the transaction, so
two bookings of one beamline are serialised and the overlap and allocation checks see each other; on
PostgreSQL an exclusion constraint backs the overlap rule. A sample-sheet change locks the session row
(then the grid row), so the capacity and one-sheet checks cannot both pass for two racing requests.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from beamtime import access, lifecycle, quality
from beamtime.defaults import DEFAULT_RULES
from beamtime.models import (
    Beamline,
    BeamtimeSession,
    CalendarFeed,
    Facility,
    FacilityStaffAssignment,
    FeedKind,
    Metric,
    Operator,
    Proposal,
    QualityPolicy,
    QualityRule,
    SampleSheetEntry,
    SessionStatus,
    SessionTransition,
    Shipment,
    ShipmentGrid,
    ShipmentStatus,
    ShipmentTransition,
)
from grids import lifecycle as grid_lifecycle
from grids import services as grid_services
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions
from lims.errors import ConflictError, DomainError, PermissionDeniedError
from lims.lifecycle import transition
from lims.models import FacilityStaff, Lab

DEFAULT_FREEZE_BEFORE = datetime.timedelta(hours=48)


def _move_grids(*, grids: Sequence[Grid], to_state: str, by, cause: str = "", reason: str = "", checked: bool):
    """Move grids through the one lifecycle service. `checked`: the caller established that `by` acts on
    these grids as facility staff (not as a lab member), so the grid service skips its membership check."""
    return grid_services.grids_transition(
        grids=grids, to_state=to_state, by=by, cause=cause, reason=reason, authorized=checked
    )


# --- facilities and staff -----------------------------------------------------------------------


def facility_staff_assign(*, user, facility: Facility, by) -> FacilityStaffAssignment:
    """Make `user` staff of `facility` (superusers, or staff of that facility)."""
    access.require_staff(by, facility.pk, "appoint its staff")
    with transaction.atomic():
        FacilityStaff.objects.get_or_create(user=user)
        assignment, _ = FacilityStaffAssignment.objects.get_or_create(user=user, facility=facility)
    access.forget(user)
    return assignment


# --- proposals ----------------------------------------------------------------------------------


def proposal_create(
    *,
    facility: Facility,
    number: str,
    lab: Lab,
    principal_investigator: str,
    title: str,
    shifts_allocated: int,
    valid_from: datetime.date,
    valid_until: datetime.date,
    by,
) -> Proposal:
    """Record a granted proposal (by a member of the lab, or staff of the facility)."""
    if not (permissions.is_member(by, lab) or access.is_staff_of(by, facility.pk)):
        permissions.require_member(by, lab)
    if shifts_allocated is None or shifts_allocated < 1:
        raise DomainError("shifts_allocated: a proposal grants at least 1 shift.", field="shifts_allocated")
    if valid_until < valid_from:
        raise DomainError("valid_until: the proposal ends before it starts.", field="valid_until")
    proposal = Proposal(
        facility=facility,
        number=number.strip(),
        lab=lab,
        principal_investigator=principal_investigator.strip(),
        title=title.strip(),
        shifts_allocated=shifts_allocated,
        valid_from=valid_from,
        valid_until=valid_until,
        created_by=by,
    )
    try:
        with transaction.atomic():
            proposal.save()
    except IntegrityError:
        raise ConflictError(f"{facility} has a proposal {number!r} already.", field="number") from None
    return proposal


# --- sessions -----------------------------------------------------------------------------------


def session_shifts(*, beamline: Beamline, start: datetime.datetime, end: datetime.datetime) -> int:
    """Shifts a session of this length uses: started shifts count whole."""
    hours = (end - start).total_seconds() / 3600
    return max(1, math.ceil(hours / beamline.shift_hours - 1e-9))


def _check_booking(
    *,
    beamline: Beamline,
    proposal: Proposal,
    start: datetime.datetime,
    end: datetime.datetime,
    by,
    override_reason: str,
    exclude_pk: int | None = None,
    current_shifts: int = 0,
) -> tuple[int, bool]:
    """Validate a booking with the beamline and proposal rows locked. Returns (shifts, overridden).

    `current_shifts`: what the session being rescheduled uses now; an edit that does not grow it needs no
    new override, even where the proposal is already beyond its allocation (by an earlier override).
    """
    if start is None or end is None or end <= start:
        raise DomainError("end: a session ends after it starts.", field="end")
    if proposal.facility_id != beamline.facility_id:
        raise DomainError(
            f"Proposal {proposal.number} is for {proposal.facility}, not for {beamline.facility}.", field="proposal"
        )
    tz = timezone.get_current_timezone()
    if timezone.localtime(start, tz).date() < proposal.valid_from or timezone.localtime(end, tz).date() > (
        proposal.valid_until + datetime.timedelta(days=1)
    ):
        raise DomainError(
            f"The session lies outside proposal {proposal.number}'s validity "
            f"({proposal.valid_from} – {proposal.valid_until}).",
            field="start",
        )
    clash = (
        BeamtimeSession.objects.filter(beamline=beamline, start__lt=end, end__gt=start)
        .exclude(status=SessionStatus.CANCELLED)
        .exclude(pk=exclude_pk)
        .select_related("proposal")
        .first()
    )
    if clash is not None:
        raise ConflictError(
            f"{beamline} is booked {timezone.localtime(clash.start):%Y-%m-%d %H:%M} – "
            f"{timezone.localtime(clash.end):%Y-%m-%d %H:%M} (session {clash.pk}); sessions on a beamline never overlap.",
            field="start",
            details={"overlapping_session": clash.pk},
        )
    shifts = session_shifts(beamline=beamline, start=start, end=end)
    used = sum(
        BeamtimeSession.objects.filter(proposal=proposal)
        .exclude(status=SessionStatus.CANCELLED)
        .exclude(pk=exclude_pk)
        .values_list("shifts", flat=True)
    )
    if used + shifts <= proposal.shifts_allocated or (exclude_pk is not None and shifts <= current_shifts):
        return shifts, False
    details = {"shifts_allocated": proposal.shifts_allocated, "shifts_scheduled": used, "shifts_requested": shifts}
    if not override_reason.strip():
        raise ConflictError(
            f"Proposal {proposal.number} has {proposal.shifts_allocated} shift(s) allocated and {used} scheduled; "
            f"this session needs {shifts}. Facility staff may override with a reason.",
            field="shifts",
            details=details,
        )
    if not access.is_staff_of(by, beamline.facility_id):
        raise PermissionDeniedError(
            "Only facility staff may schedule beyond the shifts a proposal was allocated.", details=details
        )
    return shifts, True


def session_schedule(
    *,
    beamline: Beamline,
    proposal: Proposal,
    start: datetime.datetime,
    end: datetime.datetime,
    by,
    local_contact=None,
    freeze_at: datetime.datetime | None = None,
    notes: str = "",
    override_reason: str = "",
) -> BeamtimeSession:
    """Book a session: no overlap on the beamline, within the proposal's shifts (unless staff override)."""
    access.require_can_schedule(by, lab_id=proposal.lab_id, facility_id=beamline.facility_id)
    if freeze_at is None and start is not None:
        freeze_at = start - DEFAULT_FREEZE_BEFORE
        if freeze_at < timezone.now():
            freeze_at = start
    if freeze_at is not None and end is not None and freeze_at > end:
        raise DomainError("freeze_at: the sample sheet freezes before the session ends.", field="freeze_at")
    try:
        with transaction.atomic():
            Beamline.objects.select_for_update().get(pk=beamline.pk)
            Proposal.objects.select_for_update().get(pk=proposal.pk)
            shifts, overridden = _check_booking(
                beamline=beamline, proposal=proposal, start=start, end=end, by=by, override_reason=override_reason
            )
            session = BeamtimeSession(
                beamline=beamline,
                proposal=proposal,
                lab_id=proposal.lab_id,
                start=start,
                end=end,
                shifts=shifts,
                local_contact=local_contact,
                freeze_at=freeze_at,
                notes=notes,
                created_by=by,
            )
            if overridden:
                session.shift_override_reason = override_reason.strip()
                session.shift_override_by = by
                session.shift_override_at = timezone.now()
            session.save()
            SessionTransition.objects.create(
                session=session, from_status="", to_status=session.status, by=by, reason=override_reason.strip()
            )
    except IntegrityError:
        # The PostgreSQL exclusion constraint caught an overlap the lock did not see (a write outside the service).
        raise ConflictError(f"{beamline} is booked at that time; sessions on a beamline never overlap.") from None
    return session


def session_reschedule(
    *,
    session: BeamtimeSession,
    by,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    freeze_at: datetime.datetime | None = None,
    local_contact=...,
    notes: str | None = None,
    override_reason: str = "",
) -> BeamtimeSession:
    """Move or resize a planned or confirmed session, with the same rules as booking it."""
    access.require_session_visible(by, session)
    access.require_can_schedule(by, lab_id=session.lab_id, facility_id=session.beamline.facility_id)
    try:
        with transaction.atomic():
            Beamline.objects.select_for_update().get(pk=session.beamline_id)
            Proposal.objects.select_for_update().get(pk=session.proposal_id)
            locked = BeamtimeSession.objects.select_for_update().get(pk=session.pk)
            if locked.status not in lifecycle.SHEET_OPEN:
                raise ConflictError(f"A {locked.get_status_display().lower()} session cannot be rescheduled.")
            new_start, new_end = start or locked.start, end or locked.end
            shifts, overridden = _check_booking(
                beamline=locked.beamline,
                proposal=locked.proposal,
                start=new_start,
                end=new_end,
                by=by,
                override_reason=override_reason,
                exclude_pk=locked.pk,
                current_shifts=locked.shifts,
            )
            if (new_start, new_end) != (locked.start, locked.end):
                _check_sheet_overlaps(session=locked, start=new_start, end=new_end)
            locked.start, locked.end, locked.shifts = new_start, new_end, shifts
            if freeze_at is not None and freeze_at != locked.freeze_at:
                # Moving the deadline of a frozen sheet would reopen it: that is the facility's call.
                if _sheet_is_frozen(locked) and not access.is_staff_of(by, locked.beamline.facility_id):
                    raise ConflictError(
                        f"The sample sheet froze at {timezone.localtime(locked.freeze_at):%Y-%m-%d %H:%M}; "
                        "only facility staff can move its deadline now.",
                        field="freeze_at",
                    )
                locked.freeze_at = freeze_at
            if locked.freeze_at > new_end:
                raise DomainError("freeze_at: the sample sheet freezes before the session ends.", field="freeze_at")
            if local_contact is not ...:
                locked.local_contact = local_contact
            if notes is not None:
                locked.notes = notes
            if overridden:
                locked.shift_override_reason = override_reason.strip()
                locked.shift_override_by = by
                locked.shift_override_at = timezone.now()
            locked._change_reason = "rescheduled"
            locked.save()
    except IntegrityError:
        raise ConflictError(f"{session.beamline} is booked at that time.") from None
    return locked


def _check_sheet_overlaps(*, session: BeamtimeSession, start: datetime.datetime, end: datetime.datetime) -> None:
    """A moved session must not overlap another session whose sheet holds one of its grids."""
    grid_ids = list(session.entries.values_list("grid_id", flat=True))
    if not grid_ids:
        return
    # Lock the grids (after the session, as sample_sheet_add does) so a racing add sees the new times.
    list(Grid.objects.select_for_update().filter(pk__in=grid_ids).order_by("pk").values_list("pk", flat=True))
    clash = (
        SampleSheetEntry.objects.filter(grid_id__in=grid_ids, session__start__lt=end, session__end__gt=start)
        .exclude(session=session)
        .exclude(session__status=SessionStatus.CANCELLED)
        .select_related("grid")
        .first()
    )
    if clash is not None:
        raise ConflictError(
            f"{clash.grid.barcode} is on the sample sheet of session {clash.session_id}, which would overlap this "
            "one; a grid is on one sheet of sessions that overlap in time.",
            field="start",
            details={"session": clash.session_id, "grid": clash.grid_id},
        )


def session_transition(*, session: BeamtimeSession, to_status: str, by, reason: str = "") -> BeamtimeSession:
    """Move a session along planned → confirmed → running → finished (or cancelled), audited.

    Confirming, starting and finishing are the facility's calls; the lab may cancel or un-confirm its own.
    Cancelling takes the grids off the sheet (back to the state they had).
    """
    lifecycle.SESSION_LIFECYCLE.require_known(to_status)
    access.require_session_visible(by, session)
    facility_id = session.beamline.facility_id
    if to_status in (SessionStatus.CONFIRMED, SessionStatus.RUNNING, SessionStatus.FINISHED):
        access.require_staff(by, facility_id, f"mark a session {SessionStatus(to_status).label.lower()}")
    if to_status == SessionStatus.CANCELLED and not reason.strip():
        raise DomainError("reason: say why the session is cancelled.", field="reason")
    with transaction.atomic():
        locked = transition(
            lifecycle=lifecycle.SESSION_LIFECYCLE,
            queryset=BeamtimeSession.objects.select_related("beamline"),
            ids=[session.pk],
            to_state=to_status,
            field="status",
            audit=lambda row, was: SessionTransition(
                session=row, from_status=was, to_status=to_status, by=by, reason=reason
            ),
            change_reason=reason or f"status → {to_status}",
            update_fields=["status"],
        )[session.pk]
        if to_status == SessionStatus.CANCELLED:
            for entry in list(locked.entries.select_related("grid")):
                _release_grid(entry=entry, by=by, reason=f"session {locked.pk} cancelled: {reason}")
    session.status = locked.status
    return locked


# --- the gate -----------------------------------------------------------------------------------


def quality_policy_for(*, beamline: Beamline) -> QualityPolicy:
    """The beamline's policy; a missing one is created with the default rules."""
    with transaction.atomic():
        policy, created = QualityPolicy.objects.get_or_create(
            beamline=beamline, defaults={"name": f"{beamline} default gate"}
        )
        if created:
            QualityRule.objects.bulk_create(
                [
                    QualityRule(policy=policy, metric=m, operator=o, threshold=t, order=i)
                    for i, (m, o, t) in enumerate(DEFAULT_RULES)
                ]
            )
    return policy


def quality_policy_update(
    *, policy: QualityPolicy, rules: Iterable[dict], by, name: str | None = None, description: str | None = None
) -> QualityPolicy:
    """Replace a policy's rules (facility staff of its beamline only). Each rule: metric, operator, threshold."""
    access.require_staff(by, policy.beamline.facility_id, "edit the beamline's quality policy")
    rules = list(rules)
    built = []
    for i, rule in enumerate(rules):
        metric, operator, threshold = rule.get("metric"), rule.get("operator"), rule.get("threshold")
        if metric not in Metric.values:
            raise DomainError(f"rules[{i}].metric: {metric!r} is not one of {', '.join(Metric.values)}.", field="rules")
        if operator not in Operator.values:
            raise DomainError(
                f"rules[{i}].operator: {operator!r} is not one of {', '.join(Operator.values)}.", field="rules"
            )
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise DomainError(f"rules[{i}].threshold: give a number.", field="rules") from None
        if not math.isfinite(threshold):
            raise DomainError(f"rules[{i}].threshold: give a finite number.", field="rules")
        built.append(QualityRule(metric=metric, operator=operator, threshold=threshold, order=i))
    with transaction.atomic():
        locked = QualityPolicy.objects.select_for_update().get(pk=policy.pk)
        for old in locked.rules.all():
            old._change_reason = "policy edited"
            old.delete()
        for rule in built:
            rule.policy = locked
            rule.save()
        if name is not None:
            locked.name = name.strip() or locked.name
        if description is not None:
            locked.description = description
        locked.updated_by = by
        locked._change_reason = f"{len(built)} rule(s)"
        locked.save()
    return locked


# --- sample sheets ------------------------------------------------------------------------------


def _sheet_is_frozen(session: BeamtimeSession) -> bool:
    return timezone.now() >= session.freeze_at


def _require_sheet_change(*, session: BeamtimeSession, by) -> bool:
    """Refuse sheet changes on closed sessions and, after the freeze, by anyone but staff. Returns is_staff."""
    is_staff = access.is_staff_of(by, session.beamline.facility_id)
    if session.status not in lifecycle.SHEET_OPEN:
        raise ConflictError(
            f"The sample sheet of a {session.get_status_display().lower()} session cannot change.", field="session"
        )
    if _sheet_is_frozen(session) and not is_staff:
        raise ConflictError(
            f"The sample sheet froze at {timezone.localtime(session.freeze_at):%Y-%m-%d %H:%M}; "
            "only facility staff can change it now.",
            field="session",
            details={"freeze_at": session.freeze_at.isoformat()},
        )
    return is_staff


def sample_sheet_add(
    *, session: BeamtimeSession, grid: Grid, by, override_reason: str = "", position: int | None = None
) -> SampleSheetEntry:
    """Put a grid on a session's sample sheet; the grid moves to `scheduled`.

    Refused (409) when the sheet is full, frozen (except for facility staff) or closed, when the grid is on
    the sheet of an overlapping session, or when the grid fails the beamline's quality policy — the refusal
    lists the failing rules. A QC reviewer of the grid's lab admits a failing grid with a written reason.
    """
    override_reason = (override_reason or "").strip()
    access.require_session_visible(by, session)
    # The gate reads the grid's checks and decisions (several queries): evaluate it before the row locks, so
    # the session and the grid stay locked only for the checks that must see their current state.
    evaluation = quality.evaluate(grid=grid, beamline=session.beamline)
    with transaction.atomic():
        locked = BeamtimeSession.objects.select_for_update().select_related("beamline").get(pk=session.pk)
        is_staff = _require_sheet_change(session=locked, by=by)
        grid = Grid.objects.select_for_update().get(pk=grid.pk)
        if not is_staff:
            permissions.require_member(by, grid.lab_id)
        if grid.lab_id != locked.lab_id:
            raise DomainError(f"{grid.barcode} belongs to another lab than session {locked.pk}.", field="grid")
        position = _sheet_position(session=locked, grid=grid, position=position)
        _require_grid_free(session=locked, grid=grid)
        already_scheduled = grid.state == GridState.SCHEDULED and _on_open_sheet(grid, exclude_session=locked.pk)
        if not already_scheduled and not grid_lifecycle.can_move(grid.state, GridState.SCHEDULED):
            raise ConflictError(
                f"{grid.barcode}: {grid_lifecycle.refusal(grid.state, GridState.SCHEDULED)}", field="grid"
            )
        override_by = _gate_admission(evaluation=evaluation, grid=grid, by=by, override_reason=override_reason)
        entry = SampleSheetEntry(
            session=locked,
            grid=grid,
            position=position,
            grid_state_before=grid.state,
            gate_passed=evaluation.passed,
            gate_evaluation=[r.__dict__ for r in evaluation.rules],
            override_reason=override_reason if override_by else "",
            override_by=override_by,
            added_by=by,
        )
        try:
            with transaction.atomic():
                entry.save()
        except IntegrityError:
            raise ConflictError("The sample sheet changed meanwhile; reload it and try again.") from None
        if not already_scheduled:
            _move_grids(
                grids=[grid],
                to_state=GridState.SCHEDULED,
                by=by,
                cause=f"sample sheet of session {locked.pk}",
                reason=f"gate override: {override_reason}" if override_by else "",
                checked=is_staff,
            )
    return entry


def _sheet_position(*, session: BeamtimeSession, grid: Grid, position: int | None) -> int:
    """The holder position the grid takes on the (locked) sheet: the one asked for, or the first free one."""
    entries = list(session.entries.all())
    if any(e.grid_id == grid.pk for e in entries):
        raise ConflictError(f"{grid.barcode} is on this sample sheet already.", field="grid")
    capacity = session.beamline.capacity
    taken = {e.position for e in entries}
    if len(entries) >= capacity:
        raise ConflictError(
            f"The sample sheet is full: {session.beamline} takes {capacity} grid(s) per session.",
            field="session",
            details={"capacity": capacity},
        )
    if position is None:
        return min(p for p in range(1, capacity + 1) if p not in taken)
    if not 1 <= position <= capacity:
        raise DomainError(f"position: {session.beamline} has holder positions 1–{capacity}.", field="position")
    if position in taken:
        raise ConflictError(f"Holder position {position} is taken.", field="position")
    return position


def _require_grid_free(*, session: BeamtimeSession, grid: Grid) -> None:
    """Refuse a grid booked into an overlapping session, or away in another session's dewar."""
    clash = (
        SampleSheetEntry.objects.filter(grid=grid, session__start__lt=session.end, session__end__gt=session.start)
        .exclude(session__status=SessionStatus.CANCELLED)
        .select_related("session")
        .first()
    )
    if clash is not None:
        raise ConflictError(
            f"{grid.barcode} is on the sample sheet of session {clash.session_id}, which overlaps this one.",
            field="grid",
            details={"session": clash.session_id},
        )
    away = (
        ShipmentGrid.objects.filter(grid=grid)
        .exclude(shipment__status=ShipmentStatus.RETURNED)
        .exclude(shipment__session=session)
        .first()
    )
    if away is not None and grid.state == GridState.SHIPPED:
        raise ConflictError(
            f"{grid.barcode} is away in shipment {away.shipment_id}; it joins another sheet once the dewar is back.",
            field="grid",
            details={"shipment": away.shipment_id},
        )


def _gate_admission(*, evaluation, grid: Grid, by, override_reason: str):
    """Who admits the grid past a failed gate (None when it passed); refuses without a reviewer's reason."""
    if evaluation.passed:
        return None
    if not override_reason:
        raise ConflictError(
            evaluation.summary() + " A QC reviewer may admit it with a written reason.",
            field="grid",
            details={"failing_rules": [r.__dict__ for r in evaluation.failing], "evaluation": evaluation.as_dict()},
        )
    if not access.is_qc_reviewer(by, grid.lab_id):
        raise PermissionDeniedError(
            "Only a QC reviewer (or lab admin) of the grid's lab may admit a grid that fails the gate.",
            details={"failing_rules": [r.__dict__ for r in evaluation.failing]},
        )
    return by


def _on_open_sheet(grid: Grid, *, exclude_session: int | None = None) -> bool:
    return (
        SampleSheetEntry.objects.filter(grid=grid, session__status__in=lifecycle.SHEET_OPEN)
        .exclude(session_id=exclude_session)
        .exists()
    )


def _release_grid(*, entry: SampleSheetEntry, by, reason: str) -> None:
    """After an entry leaves an open sheet: a grid on no other open sheet leaves `scheduled`."""
    grid = entry.grid
    grid.refresh_from_db(fields=["state"])
    if grid.state != GridState.SCHEDULED or _on_open_sheet(grid, exclude_session=entry.session_id):
        return
    back = grid_lifecycle.unscheduled_state(entry.grid_state_before)
    if entry.grid_state_before and entry.grid_state_before != back:
        reason += f" (was {entry.grid_state_before} before scheduling)"
    is_staff = access.is_staff_of(by, entry.session.beamline.facility_id)
    _move_grids(
        grids=[grid], to_state=back, by=by, cause=f"off the sample sheet of session {entry.session_id}",
        reason=reason, checked=is_staff,
    )  # fmt: skip


def sample_sheet_remove(*, entry: SampleSheetEntry, by, reason: str = "") -> None:
    """Take a grid off a sheet (same freeze and status rules as adding); the grid leaves `scheduled`."""
    access.require_session_visible(by, entry.session)
    with transaction.atomic():
        locked = BeamtimeSession.objects.select_for_update().select_related("beamline").get(pk=entry.session_id)
        is_staff = _require_sheet_change(session=locked, by=by)
        entry = SampleSheetEntry.objects.select_related("grid", "session__beamline").filter(pk=entry.pk).first()
        if entry is None:
            raise ConflictError("That grid is not on the sample sheet any more.")
        if not is_staff:
            permissions.require_member(by, entry.grid.lab_id)
        packed = (
            ShipmentGrid.objects.filter(shipment__session=locked, grid_id=entry.grid_id)
            .exclude(shipment__status=ShipmentStatus.RETURNED)
            .select_related("shipment")
            .first()
        )
        if packed is not None:
            raise ConflictError(
                f"{entry.grid.barcode} is packed in shipment {packed.shipment_id} "
                f"({packed.shipment.get_status_display().lower()}); it stays on the sheet until the dewar is back.",
                field="grid",
                details={"shipment": packed.shipment_id},
            )
        entry._change_reason = reason or "removed"
        entry.delete()
        _release_grid(entry=entry, by=by, reason=reason or "removed from the sample sheet")


# --- shipments ----------------------------------------------------------------------------------


def shipment_create(
    *,
    session: BeamtimeSession,
    dewar: str,
    by,
    courier: str = "",
    tracking_number: str = "",
    grids: Sequence[Grid] | None = None,
    notes: str = "",
) -> Shipment:
    """Pack a dewar for a session: the given grids (default: every scheduled grid of its sheet not yet packed)."""
    permissions.require_member(by, session.lab_id)
    if not dewar.strip():
        raise DomainError("dewar: name the dewar (or scan its barcode).", field="dewar")
    with transaction.atomic():
        locked = BeamtimeSession.objects.select_for_update().get(pk=session.pk)
        if locked.status not in lifecycle.ACTIVE_SESSION:
            raise ConflictError(f"A {locked.get_status_display().lower()} session gets no shipment.")
        on_sheet = {e.grid_id: e.grid for e in locked.entries.select_related("grid__box")}
        packed = set(
            ShipmentGrid.objects.filter(shipment__session=locked)
            .exclude(shipment__status=ShipmentStatus.RETURNED)
            .values_list("grid_id", flat=True)
        )
        if grids is None:
            chosen = [g for pk, g in on_sheet.items() if pk not in packed and g.state == GridState.SCHEDULED]
        else:
            chosen = []
            for g in grids:
                if g.pk not in on_sheet:
                    raise DomainError(f"{g.barcode} is not on the sample sheet of session {locked.pk}.", field="grids")
                if g.pk in packed:
                    raise ConflictError(f"{g.barcode} is packed in another shipment of this session.", field="grids")
                chosen.append(on_sheet[g.pk])
        if not chosen:
            raise DomainError("grids: no grid of the sample sheet is left to ship.", field="grids")
        shipment = Shipment.objects.create(
            session=locked,
            lab_id=locked.lab_id,
            dewar=dewar.strip(),
            courier=courier.strip(),
            tracking_number=tracking_number.strip(),
            notes=notes,
            created_by=by,
        )
        ShipmentGrid.objects.bulk_create(
            [
                ShipmentGrid(
                    shipment=shipment,
                    grid=g,
                    box_name=g.box.name if g.box_id else "",
                    box_barcode=g.box.barcode if g.box_id else "",
                    slot=g.slot,
                )
                for g in sorted(chosen, key=lambda g: g.barcode)
            ]
        )
        ShipmentTransition.objects.create(shipment=shipment, from_status="", to_status=shipment.status, by=by)
    return shipment


def shipment_transition(
    *, shipment: Shipment, to_status: str, by, reason: str = "", tracking_number: str | None = None
) -> Shipment:
    """prepared → shipped (grids scheduled → shipped) → received (at the facility) → returned (grids not
    imaged go back to the lab's pool of accepted grids). Audited; illegal moves are refused (409)."""
    lifecycle.SHIPMENT_LIFECYCLE.require_known(to_status)
    session = shipment.session
    is_member = permissions.is_member(by, shipment.lab_id)
    is_staff = access.is_staff_of(by, session.beamline.facility_id)
    if not (is_member or is_staff):
        from django.http import Http404

        raise Http404("No such shipment.")
    if to_status == ShipmentStatus.SHIPPED and not is_member:
        raise PermissionDeniedError("Only the sending lab marks its shipment shipped.")
    if to_status == ShipmentStatus.RECEIVED and not is_staff and not is_member:
        raise PermissionDeniedError("Only facility staff or the lab mark a shipment received.")
    now = timezone.now()

    def stamp(row: Shipment) -> None:
        if to_status == ShipmentStatus.SHIPPED:
            row.shipped_at = now
            if tracking_number is not None:
                row.tracking_number = tracking_number.strip()
        elif to_status == ShipmentStatus.RECEIVED:
            row.received_at = now
        elif to_status == ShipmentStatus.RETURNED:
            row.returned_at = now

    with transaction.atomic():
        locked = transition(
            lifecycle=lifecycle.SHIPMENT_LIFECYCLE,
            queryset=Shipment.objects.all(),
            ids=[shipment.pk],
            to_state=to_status,
            field="status",
            audit=lambda row, was: ShipmentTransition(
                shipment=row, from_status=was, to_status=to_status, by=by, reason=reason
            ),
            on_move=stamp,
            change_reason=reason or f"status → {to_status}",
        )[shipment.pk]
        grids = list(Grid.objects.filter(shipment_items__shipment=locked).order_by("pk"))
        if to_status == ShipmentStatus.SHIPPED:
            _move_grids(grids=grids, to_state=GridState.SHIPPED, by=by, cause=f"shipment {locked.pk}", checked=False)
        elif to_status == ShipmentStatus.RETURNED:
            back = [g for g in grids if g.state == GridState.SHIPPED]
            if back:
                _move_grids(
                    grids=back,
                    to_state=grid_lifecycle.RETURNED_UNIMAGED,
                    by=by,
                    cause=f"shipment {locked.pk} returned",
                    reason=reason or "returned from the beamline without being imaged",
                    checked=is_staff and not is_member,
                )
    return locked


# --- calendar feeds -----------------------------------------------------------------------------


def calendar_feed_for(*, lab: Lab | None = None, beamline: Beamline | None = None, by) -> CalendarFeed:
    """The feed of a lab (its members) or a beamline (its facility's staff), created on first use."""
    if (lab is None) == (beamline is None):
        raise DomainError("Give a lab or a beamline.")
    if lab is not None:
        permissions.require_member(by, lab)
        feed, _ = CalendarFeed.objects.get_or_create(lab=lab, defaults={"kind": FeedKind.LAB})
    else:
        access.require_staff(by, beamline.facility_id, "subscribe to the beamline's calendar")
        feed, _ = CalendarFeed.objects.get_or_create(beamline=beamline, defaults={"kind": FeedKind.BEAMLINE})
    return feed


def calendar_feed_rotate(*, feed: CalendarFeed, by) -> CalendarFeed:
    """A new secret URL; the old one stops working (for a leaked link)."""
    calendar_feed_for(lab=feed.lab, beamline=feed.beamline, by=by)
    from beamtime.models import new_token

    feed.token = new_token()
    feed.save(update_fields=["token"])
    return feed

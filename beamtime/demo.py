"""Demo data for beamtime (idempotent): staff at HZB, default gates, a proposal and a session with a sheet."""

from __future__ import annotations

import datetime
import logging

from django.utils import timezone

from beamtime import services
from beamtime.models import Beamline, BeamtimeSession, FacilityStaffAssignment, Proposal, SampleSheetEntry
from lims.errors import DomainError
from lims.models import FacilityStaff

log = logging.getLogger(__name__)


def load(ctx: dict) -> None:
    lab, admin = ctx.get("lab"), ctx.get("admin")
    for beamline in Beamline.objects.all():
        services.quality_policy_for(beamline=beamline)
    hzb = Beamline.objects.select_related("facility").filter(code="hzb-u41-txm").first()
    if lab is None or admin is None or hzb is None:
        return
    staff = ctx.get("facility_staff")
    if staff is not None:
        FacilityStaff.objects.get_or_create(user=staff)
        FacilityStaffAssignment.objects.get_or_create(user=staff, facility=hzb.facility)
    today = timezone.localdate()
    proposal = Proposal.objects.filter(facility=hzb.facility, number="DEMO-2026-0042").first()
    if proposal is None:
        proposal = services.proposal_create(
            facility=hzb.facility, number="DEMO-2026-0042", lab=lab, principal_investigator="Dr. Demo",
            title="Mitochondrial remodelling in infected HeLa cells", shifts_allocated=9,
            valid_from=today - datetime.timedelta(days=30), valid_until=today + datetime.timedelta(days=365), by=admin,
        )  # fmt: skip
    session = BeamtimeSession.objects.filter(proposal=proposal).order_by("start").first()
    if session is None:
        start = timezone.make_aware(datetime.datetime.combine(today + datetime.timedelta(days=14), datetime.time(8)))
        try:
            session = services.session_schedule(
                beamline=hzb, proposal=proposal, start=start, end=start + datetime.timedelta(hours=24), by=admin,
                local_contact=staff, notes="Demo session: bring the cryo-transfer shuttle.",
            )  # fmt: skip
        except DomainError as error:  # the slot is taken by real data: leave the demo without a session
            log.warning("beamtime demo: no session booked (%s)", error.message)
            return
    ctx["beamtime_session"] = session
    accepted = list(ctx.get("accepted_grids") or [])
    if not accepted or SampleSheetEntry.objects.filter(session=session).exists():
        return
    grid = accepted[0]
    try:
        services.sample_sheet_add(session=session, grid=grid, by=admin)
    except DomainError:
        reviewer = ctx.get("reviewer") or admin
        try:
            services.sample_sheet_add(
                session=session, grid=grid, by=reviewer,
                override_reason="Demo: admitted by the QC reviewer although the gate has no complete data yet.",
            )  # fmt: skip
        except DomainError as error:
            log.warning("beamtime demo: %s not put on the sheet (%s)", grid, error.message)

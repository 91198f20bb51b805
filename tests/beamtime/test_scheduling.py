"""Booking sessions: no overlap on a beamline, shifts within the allocation unless staff override."""

from __future__ import annotations

import datetime

import pytest
from django.http import Http404

from beamtime import services
from beamtime.models import Beamline, BeamtimeSession, Facility, Proposal, SessionStatus, SessionTransition
from lims.errors import ConflictError, DomainError, PermissionDeniedError
from tests.beamtime.factories import ProposalFactory, at, beamline, schedule


def test_data_migration_creates_the_three_beamlines_with_capacity_and_shift_length(db):
    codes = {b.code: b for b in Beamline.objects.select_related("facility")}
    assert set(codes) >= {"hzb-u41-txm", "alba-mistral", "diamond-b24"}
    assert codes["hzb-u41-txm"].facility.short_name == "HZB"
    assert all(b.capacity >= 1 and b.shift_hours >= 1 for b in codes.values())
    assert Facility.objects.filter(short_name__in=["HZB", "ALBA", "Diamond"]).count() == 3
    assert all(b.quality_policy.rules.count() == 5 for b in codes.values())


def test_schedule_counts_started_shifts_and_audits_the_status(session, hzb):
    assert session.shifts == 3  # 24 h of 8 h shifts
    assert session.status == SessionStatus.PLANNED
    assert session.lab_id == session.proposal.lab_id
    assert SessionTransition.objects.filter(session=session, to_status="planned").count() == 1
    start = at(40)
    short = services.session_schedule(
        beamline=hzb,
        proposal=session.proposal,
        start=start,
        end=start + datetime.timedelta(hours=9),
        by=session.created_by,
    )
    assert short.shifts == 2


def test_overlapping_session_on_one_beamline_is_refused(session, proposal, member):
    with pytest.raises(ConflictError, match="never overlap"):
        services.session_schedule(
            beamline=session.beamline,
            proposal=proposal,
            start=session.start + datetime.timedelta(hours=12),
            end=session.end + datetime.timedelta(hours=12),
            by=member,
        )
    assert BeamtimeSession.objects.count() == 1


def test_back_to_back_sessions_and_other_beamlines_do_not_clash(session, proposal, member, lab):
    services.session_schedule(
        beamline=session.beamline,
        proposal=proposal,
        start=session.end,
        end=session.end + datetime.timedelta(hours=8),
        by=member,
    )
    alba = beamline("alba-mistral")
    alba_proposal = ProposalFactory(lab=lab, created_by=member, facility=alba.facility)
    services.session_schedule(beamline=alba, proposal=alba_proposal, start=session.start, end=session.end, by=member)
    assert BeamtimeSession.objects.count() == 3


def test_a_cancelled_session_frees_its_time(session, proposal, member):
    services.session_transition(session=session, to_status="cancelled", by=member, reason="sample prep failed")
    again = services.session_schedule(
        beamline=session.beamline, proposal=proposal, start=session.start, end=session.end, by=member
    )
    assert again.pk != session.pk


def test_shifts_beyond_the_allocation_are_refused_for_the_lab(proposal, member):
    proposal.shifts_allocated = 4
    proposal.save()
    schedule(proposal=proposal, by=member, days=10, hours=24)  # 3 shifts
    with pytest.raises(ConflictError) as refused:
        schedule(proposal=proposal, by=member, days=20, hours=16)  # 2 more
    assert refused.value.details == {"shifts_allocated": 4, "shifts_scheduled": 3, "shifts_requested": 2}
    with pytest.raises(PermissionDeniedError):
        schedule(proposal=proposal, by=member, days=20, hours=16, override_reason="we asked nicely")


def test_facility_staff_override_the_allocation_and_it_is_recorded(proposal, member, staff):
    proposal.shifts_allocated = 3
    proposal.save()
    schedule(proposal=proposal, by=member, days=10, hours=24)
    extra = schedule(proposal=proposal, by=staff, days=20, hours=8, override_reason="compensation for beam loss")
    assert extra.shift_override_reason == "compensation for beam loss"
    assert extra.shift_override_by == staff
    assert extra.shift_override_at is not None


def test_staff_of_another_facility_cannot_book_or_override(proposal, alba_staff):
    with pytest.raises(Http404):
        schedule(proposal=proposal, by=alba_staff, days=10)


def test_outsiders_cannot_book_for_a_lab(proposal, outsider):
    with pytest.raises(Http404):
        schedule(proposal=proposal, by=outsider, days=10)


def test_session_must_lie_within_the_proposal_validity(proposal, member):
    proposal.valid_until = proposal.valid_from + datetime.timedelta(days=40)
    proposal.save()
    with pytest.raises(DomainError, match="validity"):
        schedule(proposal=proposal, by=member, days=200)


def test_session_status_follows_the_map_and_staff_confirm(session, member, staff):
    with pytest.raises(PermissionDeniedError):
        services.session_transition(session=session, to_status="confirmed", by=member)
    services.session_transition(session=session, to_status="confirmed", by=staff)
    with pytest.raises(ConflictError, match="can go to"):
        services.session_transition(session=session, to_status="finished", by=staff)
    services.session_transition(session=session, to_status="running", by=staff)
    services.session_transition(session=session, to_status="finished", by=staff)
    session.refresh_from_db()
    assert session.status == "finished"
    assert list(session.transitions.values_list("to_status", flat=True)) == [
        "planned",
        "confirmed",
        "running",
        "finished",
    ]


def test_reschedule_keeps_the_rules(session, proposal, member):
    other = schedule(proposal=proposal, by=member, days=20, hours=8)
    with pytest.raises(ConflictError, match="never overlap"):
        services.session_reschedule(session=other, by=member, start=session.start, end=session.end)
    moved = services.session_reschedule(
        session=other, by=member, start=at(30), end=at(30) + datetime.timedelta(hours=16)
    )
    assert moved.shifts == 2


@pytest.mark.postgres
def test_postgres_exclusion_constraint_backs_the_overlap_rule(session):
    """A write that bypasses the service still cannot double-book a beamline on PostgreSQL."""
    from django.db import IntegrityError, transaction

    clash = BeamtimeSession(
        beamline=session.beamline, proposal=session.proposal, lab=session.lab, shifts=1,
        start=session.start + datetime.timedelta(hours=1), end=session.end, freeze_at=session.start,
        created_by=session.created_by,
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_bookings_of_one_slot_give_it_to_exactly_one(lab, member):
    """Six people book the same hours on one beamline at once: one session exists afterwards."""
    from tests.concurrency import race

    proposal = ProposalFactory(lab=lab, created_by=member, shifts_allocated=100)
    start = at(15)

    def book():
        services.session_schedule(
            beamline=beamline(), proposal=Proposal.objects.get(pk=proposal.pk), start=start,
            end=start + datetime.timedelta(hours=8), by=member,
        )  # fmt: skip

    results = race([book] * 6)
    assert results == ["ok"] + ["refused"] * 5, results
    assert BeamtimeSession.objects.filter(beamline=beamline()).count() == 1

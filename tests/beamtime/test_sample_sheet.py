"""Sample sheets: the gate, overrides, capacity, one sheet among overlapping sessions, the freeze, races."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from beamtime import services
from beamtime.models import BeamtimeSession, SampleSheetEntry
from grids.models import Grid
from lims.errors import ConflictError, DomainError, PermissionDeniedError
from tests.beamtime.factories import GOOD_FACTS, ProposalFactory, schedule
from tests.concurrency import race
from tests.factories import MembershipFactory, make_grids


def test_a_passing_grid_joins_the_sheet_and_becomes_scheduled(session, member, accepted_grids, facts):
    grid = accepted_grids[0]
    entry = services.sample_sheet_add(session=session, grid=grid, by=member)
    grid.refresh_from_db()
    assert grid.state == "scheduled"
    assert entry.position == 1 and entry.gate_passed and entry.override_reason == ""
    assert {r["metric"] for r in entry.gate_evaluation} >= {"ice_quality_class", "intact_fraction"}
    assert grid.transitions.last().cause == f"sample sheet of session {session.pk}"


def test_a_failing_grid_is_refused_with_the_failing_rules(session, member, accepted_grids, facts):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, "ice_quality_class": 4, "target_count": 1}
    with pytest.raises(ConflictError) as refused:
        services.sample_sheet_add(session=session, grid=grid, by=member)
    failing = refused.value.details["failing_rules"]
    assert [(r["metric"], r["value"], r["threshold"]) for r in failing] == [
        ("ice_quality_class", 4.0, 2.0),
        ("target_count", 1.0, 3.0),
    ]
    assert "Ice quality class" in refused.value.message
    grid.refresh_from_db()
    assert grid.state == "accepted"
    assert not SampleSheetEntry.objects.exists()


def test_a_qc_reviewer_admits_a_failing_grid_with_a_written_reason(session, member, reviewer, accepted_grids, facts):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, "intact_fraction": 0.2}
    with pytest.raises(PermissionDeniedError):
        services.sample_sheet_add(session=session, grid=grid, by=member, override_reason="please")
    entry = services.sample_sheet_add(
        session=session, grid=grid, by=reviewer, override_reason="only grid of this mutant; best squares marked"
    )
    assert not entry.gate_passed
    assert entry.override_by == reviewer
    assert entry.override_reason == "only grid of this mutant; best squares marked"
    assert grid.transitions.last().reason.startswith("gate override:")


def test_a_rejected_grid_joins_only_by_override(session, lab, reviewer, facts):
    grid = make_grids(lab=lab, user=reviewer, count=1, state="rejected")[0]
    facts[grid.pk] = {**GOOD_FACTS, "qc_decision": "rejected"}
    with pytest.raises(ConflictError, match="QC decision"):
        services.sample_sheet_add(session=session, grid=grid, by=reviewer)
    services.sample_sheet_add(session=session, grid=grid, by=reviewer, override_reason="re-check at the beamline")
    grid.refresh_from_db()
    assert grid.state == "scheduled"


def test_the_sheet_holds_at_most_the_beamline_capacity(session, member, accepted_grids, facts):
    capacity = session.beamline.capacity
    grids = accepted_grids + make_grids(lab=session.lab, user=member, count=capacity, state="accepted")
    for grid in grids[:capacity]:
        services.sample_sheet_add(session=session, grid=grid, by=member)
    with pytest.raises(ConflictError, match="full") as refused:
        services.sample_sheet_add(session=session, grid=grids[capacity], by=member)
    assert refused.value.details == {"capacity": capacity}
    assert sorted(session.entries.values_list("position", flat=True)) == list(range(1, capacity + 1))


def test_grids_that_cannot_be_scheduled_are_refused(session, lab, member, facts):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    with pytest.raises(ConflictError, match="cannot become scheduled"):
        services.sample_sheet_add(session=session, grid=grid, by=member)


def test_a_grid_is_on_one_sheet_among_overlapping_sessions(session, member, lab, accepted_grids, facts):
    from tests.beamtime.factories import beamline

    alba = beamline("alba-mistral")
    alba_proposal = ProposalFactory(lab=lab, created_by=member, facility=alba.facility)
    overlapping = services.session_schedule(
        beamline=alba, proposal=alba_proposal, start=session.start + datetime.timedelta(hours=6),
        end=session.end + datetime.timedelta(hours=6), by=member,
    )  # fmt: skip
    later = schedule(proposal=session.proposal, by=member, days=40, hours=8)
    grid = accepted_grids[0]
    services.sample_sheet_add(session=session, grid=grid, by=member)
    with pytest.raises(ConflictError, match="overlaps"):
        services.sample_sheet_add(session=overlapping, grid=grid, by=member)
    # A later session that does not overlap may list it too (it stays scheduled).
    services.sample_sheet_add(session=later, grid=grid, by=member)
    assert SampleSheetEntry.objects.filter(grid=grid).count() == 2
    # Off one sheet it stays scheduled (still on the other); off both it is accepted again.
    services.sample_sheet_remove(entry=SampleSheetEntry.objects.get(session=later, grid=grid), by=member)
    grid.refresh_from_db()
    assert grid.state == "scheduled"
    services.sample_sheet_remove(entry=SampleSheetEntry.objects.get(session=session, grid=grid), by=member)
    grid.refresh_from_db()
    assert grid.state == "accepted"


def test_after_the_freeze_only_facility_staff_change_the_sheet(session, member, staff, accepted_grids, facts):
    entry = services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    BeamtimeSession.objects.filter(pk=session.pk).update(freeze_at=timezone.now() - datetime.timedelta(minutes=1))
    session.refresh_from_db()
    with pytest.raises(ConflictError, match="froze"):
        services.sample_sheet_add(session=session, grid=accepted_grids[1], by=member)
    with pytest.raises(ConflictError, match="froze"):
        services.sample_sheet_remove(entry=entry, by=member)
    added = services.sample_sheet_add(session=session, grid=accepted_grids[1], by=staff)
    assert added.added_by == staff
    services.sample_sheet_remove(entry=entry, by=staff, reason="holder position damaged")
    accepted_grids[0].refresh_from_db()
    assert accepted_grids[0].state == "accepted"


def test_outsiders_and_other_facilities_cannot_touch_a_sheet(session, outsider, alba_staff, accepted_grids, facts):
    from django.http import Http404

    for user in (outsider, alba_staff):
        with pytest.raises(Http404):
            services.sample_sheet_add(session=session, grid=accepted_grids[0], by=user)


def test_another_labs_grid_cannot_join(session, other_lab, outsider, member, facts):
    grid = make_grids(lab=other_lab, user=outsider, count=1, state="accepted")[0]
    from django.http import Http404

    with pytest.raises((Http404, DomainError)):
        services.sample_sheet_add(session=session, grid=grid, by=member)


def test_cancelling_a_session_releases_its_grids(session, member, accepted_grids, facts):
    services.sample_sheet_add(session=session, grid=accepted_grids[0], by=member)
    services.session_transition(session=session, to_status="cancelled", by=member, reason="beam down")
    accepted_grids[0].refresh_from_db()
    assert accepted_grids[0].state == "accepted"
    with pytest.raises(ConflictError, match="cancelled session"):
        services.sample_sheet_add(session=session, grid=accepted_grids[1], by=member)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_requests_for_the_last_place_give_it_to_exactly_one(lab, member, facts):
    """Eight people add eight different grids to a sheet with one free place at the same moment."""
    proposal = ProposalFactory(lab=lab, created_by=member)
    session = schedule(proposal=proposal, by=member, days=10, hours=8)
    capacity = session.beamline.capacity
    grids = make_grids(lab=lab, user=member, count=capacity - 1 + 8, state="accepted")
    for grid in grids[: capacity - 1]:
        services.sample_sheet_add(session=session, grid=grid, by=member)
    racers = grids[capacity - 1 :]
    users = [MembershipFactory(lab=lab).user for _ in racers]

    def add(user, grid):
        return lambda: services.sample_sheet_add(
            session=BeamtimeSession.objects.get(pk=session.pk), grid=Grid.objects.get(pk=grid.pk), by=user
        )

    results = race(
        [add(user, grid) for user, grid in zip(users, racers, strict=True)],
        refusal=lambda error: "full" if "full" in error.message else f"conflict: {error.message}",
    )
    assert results == ["full"] * 7 + ["ok"], results
    assert SampleSheetEntry.objects.filter(session=session).count() == capacity
    assert Grid.objects.filter(pk__in=[g.pk for g in racers], state="scheduled").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_grid_racing_onto_two_overlapping_sheets_lands_on_one(lab, member, facts):
    """Two people put the same grid on two overlapping sessions at once: one wins, the other sees the clash."""
    from tests.beamtime.factories import beamline

    proposal = ProposalFactory(lab=lab, created_by=member)
    first = schedule(proposal=proposal, by=member, days=10, hours=8)
    alba = beamline("alba-mistral")
    alba_proposal = ProposalFactory(lab=lab, created_by=member, facility=alba.facility)
    second = services.session_schedule(
        beamline=alba, proposal=alba_proposal, start=first.start, end=first.end, by=member
    )
    grid = make_grids(lab=lab, user=member, count=1, state="accepted")[0]
    other = MembershipFactory(lab=lab).user

    def add(user, session_id):
        return lambda: services.sample_sheet_add(
            session=BeamtimeSession.objects.get(pk=session_id), grid=Grid.objects.get(pk=grid.pk), by=user
        )

    results = race(
        [add(member, first.pk), add(other, second.pk)],
        refusal=lambda error: "overlap" if "overlaps" in error.message else f"conflict: {error.message}",
    )
    assert results == ["ok", "overlap"], results
    assert SampleSheetEntry.objects.filter(grid=grid).count() == 1

import pytest

from grids import lifecycle, services
from grids.lifecycle import GridState
from grids.models import Grid, GridTransition
from lims.errors import ConflictError, DomainError
from tests.factories import make_grids


def test_every_state_before_imaged_can_be_discarded_and_none_after():
    for state in GridState:
        expected = state in {"registered", "seeded", "vitrified", "accepted", "rejected", "scheduled", "shipped"}
        assert lifecycle.can_move(state, GridState.DISCARDED) is expected, state


def test_the_design_path_is_allowed_step_by_step():
    path = ["registered", "seeded", "vitrified", "accepted", "scheduled", "shipped", "imaged", "archived"]
    for a, b in zip(path, path[1:], strict=False):
        assert lifecycle.can_move(a, b)
    assert lifecycle.can_move("vitrified", "rejected")


@pytest.mark.parametrize(
    ("start", "target"), [("registered", "vitrified"), ("seeded", "accepted"), ("registered", "imaged")]
)
def test_skipping_a_step_is_refused_and_changes_nothing(lab, member, start, target):
    grid = make_grids(lab=lab, user=member, count=1, state=start)[0]
    before = GridTransition.objects.count()
    with pytest.raises(ConflictError, match="cannot become"):
        services.grid_transition(grid=grid, to_state=target, by=member)
    grid.refresh_from_db()
    assert grid.state == start
    assert GridTransition.objects.count() == before


def test_a_transition_records_who_when_from_to_and_why(lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    services.grid_transition(grid=grid, to_state="seeded", by=member, reason="first cells", cause="seeding 1")
    last = grid.transitions.last()
    assert (last.from_state, last.to_state, last.by, last.reason) == ("registered", "seeded", member, "first cells")
    assert last.at is not None


def test_bulk_transition_is_all_or_nothing(lab, member):
    registered = make_grids(lab=lab, user=member, count=2)
    seeded = make_grids(lab=lab, user=member, count=1, state="seeded")
    with pytest.raises(ConflictError) as refused:
        services.grids_transition(grids=[*registered, *seeded], to_state="seeded", by=member)
    assert seeded[0].barcode in refused.value.message
    assert set(Grid.objects.filter(pk__in=[g.pk for g in registered]).values_list("state", flat=True)) == {"registered"}


def test_discarding_needs_a_reason_and_frees_the_slot(lab, member):
    from tests.factories import StorageBoxFactory

    box = StorageBoxFactory(lab=lab)
    grid = make_grids(lab=lab, user=member, count=1)[0]
    services.grids_move(grids=[grid], box=box, by=member)
    with pytest.raises(DomainError, match="reason"):
        services.grid_discard(grid=grid, by=member, reason="  ")
    services.grid_discard(grid=grid, by=member, reason="bent in the tweezers")
    grid.refresh_from_db()
    assert grid.state == "discarded" and grid.box is None and grid.slot is None


def test_an_imaged_grid_cannot_be_discarded(lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="imaged")[0]
    with pytest.raises(ConflictError):
        services.grid_discard(grid=grid, by=member, reason="oops")


def test_another_labs_grid_cannot_be_moved(lab, member, outsider):
    from django.http import Http404

    grid = make_grids(lab=lab, user=member, count=1)[0]
    with pytest.raises(Http404):
        services.grid_transition(grid=grid, to_state="seeded", by=outsider)
    grid.refresh_from_db()
    assert grid.state == "registered"


def test_the_database_refuses_an_unknown_state(lab, member):
    from django.db import IntegrityError, transaction

    grid = make_grids(lab=lab, user=member, count=1)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Grid.objects.filter(pk=grid.pk).update(state="frozen-ish")


def test_a_refusal_reads_as_english_for_states_that_start_with_a_vowel():
    assert lifecycle.refusal(GridState.IMAGED, GridState.DISCARDED).startswith("An imaged grid cannot become discarded")
    assert lifecycle.refusal(GridState.SEEDED, GridState.SEEDED).startswith("A seeded grid")

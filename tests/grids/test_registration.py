import pytest

from grids import services
from grids.models import Grid, GridLot
from lims.errors import ConflictError, DomainError
from tests.concurrency import race
from tests.factories import GridLotFactory, StorageBoxFactory


def test_registering_issues_unique_barcodes_and_decrements_the_lot(lab, member):
    lot = GridLotFactory(lab=lab, created_by=member, quantity=10)
    first = services.grids_register(lot=lot, count=4, by=member)
    second = services.grids_register(lot=lot, count=3, by=member)
    barcodes = [g.barcode for g in first + second]
    assert len(set(barcodes)) == 7
    assert all(b.startswith(f"{lab.code}-") for b in barcodes)
    lot.refresh_from_db()
    assert lot.quantity_left == 3
    assert all(g.state == "registered" and g.transitions.count() == 1 for g in first)


def test_register_refuses_more_grids_than_the_lot_holds(lab, member):
    lot = GridLotFactory(lab=lab, created_by=member, quantity=5)
    with pytest.raises(ConflictError, match="has 5 grid"):
        services.grids_register(lot=lot, count=6, by=member)
    lot.refresh_from_db()
    assert lot.quantity_left == 5
    assert not Grid.objects.filter(lot=lot).exists()


@pytest.mark.parametrize("count", [0, -3])
def test_register_refuses_a_non_positive_count(lab, member, count):
    lot = GridLotFactory(lab=lab, created_by=member)
    with pytest.raises(DomainError, match="at least 1"):
        services.grids_register(lot=lot, count=count, by=member)


def test_registration_into_a_box_fills_the_lowest_free_slots(lab, member):
    box = StorageBoxFactory(lab=lab, capacity=4)
    lot = GridLotFactory(lab=lab, created_by=member)
    grids = services.grids_register(lot=lot, count=3, by=member, box=box)
    assert sorted(Grid.objects.filter(pk__in=[g.pk for g in grids]).values_list("slot", flat=True)) == [1, 2, 3]


def test_registration_that_does_not_fit_the_box_takes_nothing_from_the_lot(lab, member):
    box = StorageBoxFactory(lab=lab, capacity=2)
    lot = GridLotFactory(lab=lab, created_by=member, quantity=10)
    with pytest.raises(ConflictError, match="free slot"):
        services.grids_register(lot=lot, count=3, by=member, box=box)
    lot.refresh_from_db()
    assert lot.quantity_left == 10 and not Grid.objects.filter(lot=lot).exists()


def test_a_lot_number_is_unique_per_lab_and_type(lab, member):
    from tests.factories import grid_type

    services.grid_lot_create(lab=lab, grid_type=grid_type(), lot_number="A1", quantity=5, by=member)
    with pytest.raises(ConflictError, match="A1"):
        services.grid_lot_create(lab=lab, grid_type=grid_type(), lot_number="A1", quantity=5, by=member)


def test_a_lot_cannot_expire_before_it_arrived(lab, member):
    import datetime

    from tests.factories import grid_type

    with pytest.raises(DomainError, match="expir"):
        services.grid_lot_create(
            lab=lab, grid_type=grid_type(), lot_number="X", quantity=5, by=member,
            received_on=datetime.date(2026, 5, 1), expires_on=datetime.date(2026, 4, 1),
        )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_racing_registrations_never_overdraw_a_lot(lab, member):
    """Eight threads each take 3 grids from a lot of 10: exactly three succeed (9 grids), none overdraws.

    On PostgreSQL the conditional UPDATE serialises on the row lock; SQLite serialises writers.
    """
    lot = GridLotFactory(lab=lab, created_by=member, quantity=10)
    results = race([lambda: services.grids_register(lot=GridLot.objects.get(pk=lot.pk), count=3, by=member)] * 8)
    assert results == ["ok"] * 3 + ["refused"] * 5, results
    lot.refresh_from_db()
    assert lot.quantity_left == 1
    assert Grid.objects.filter(lot=lot).count() == 9
    assert len(set(Grid.objects.filter(lot=lot).values_list("barcode", flat=True))) == 9

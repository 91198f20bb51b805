"""factory_boy factories for the core records; app-specific ones live in tests/<app>/factories.py."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from grids import services as grid_services
from grids.models import CellLine, GridLot, GridType, StorageBox
from lims.models import Lab, Membership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("bench-pass-123")


class LabFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lab

    name = factory.Sequence(lambda n: f"Lab {n}")
    code = factory.Sequence(lambda n: f"L{n:03d}")
    institution = "Test Institute"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    lab = factory.SubFactory(LabFactory)
    user = factory.SubFactory(UserFactory)
    role = "member"


def grid_type(name: str = "HZB-2") -> GridType:
    return GridType.objects.get(name=name)


class GridLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GridLot

    lab = factory.SubFactory(LabFactory)
    grid_type = factory.LazyFunction(grid_type)
    lot_number = factory.Sequence(lambda n: f"LOT-{n:05d}")
    quantity = 25
    quantity_left = factory.LazyAttribute(lambda lot: lot.quantity)
    created_by = factory.SubFactory(UserFactory)


class StorageBoxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StorageBox

    lab = factory.SubFactory(LabFactory)
    name = factory.Sequence(lambda n: f"Box {n}")
    barcode = factory.Sequence(lambda n: f"BOX-{n:05d}")
    capacity = 4


class CellLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CellLine

    lab = factory.SubFactory(LabFactory)
    name = factory.Sequence(lambda n: f"HeLa-{n}")
    organism = "Homo sapiens"
    biosafety_level = 2
    source = "ATCC CCL-2"


def make_grids(*, lab, user, count: int = 3, state: str = "registered", lot=None):
    """Grids registered through the service, then walked along the lifecycle to `state`."""
    from grids.lifecycle import GridState

    lot = lot or GridLotFactory(lab=lab, created_by=user, quantity=max(25, count))
    grids = grid_services.grids_register(lot=lot, count=count, by=user)
    path = [
        GridState.SEEDED,
        GridState.VITRIFIED,
        GridState.ACCEPTED,
        GridState.SCHEDULED,
        GridState.SHIPPED,
        GridState.IMAGED,
        GridState.ARCHIVED,
    ]
    if state == GridState.REJECTED:
        path = [GridState.SEEDED, GridState.VITRIFIED, GridState.REJECTED]
    if state == GridState.DISCARDED:
        grid_services.grids_transition(grids=grids, to_state=state, by=user, reason="test")
        return grids
    for step in path:
        if grids[0].state == state:
            break
        grid_services.grids_transition(grids=grids, to_state=step, by=user, cause="test setup")
    return grids

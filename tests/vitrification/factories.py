"""factory_boy factories for vitrification records."""

from __future__ import annotations

import factory

from tests.factories import LabFactory
from vitrification.models import Instrument, InstrumentKind, InstrumentModel


class PlungerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument

    lab = factory.SubFactory(LabFactory)
    name = factory.Sequence(lambda n: f"Vitrobot {n}")
    kind = InstrumentKind.PLUNGER
    model = InstrumentModel.VITROBOT_MARK_IV


class HPFFactory(PlungerFactory):
    name = factory.Sequence(lambda n: f"EM ICE {n}")
    kind = InstrumentKind.HPF
    model = InstrumentModel.LEICA_EM_ICE


# Typical Vitrobot settings for cells on grids (back-blotting, high humidity).
PLUNGE_PARAMS = {
    "blot_time_s": 10.0,
    "blot_force": 0,
    "blot_side": "back",
    "humidity_percent": 95.0,
    "chamber_temperature_c": 22.0,
    "wait_time_s": 30.0,
    "sample_volume_ul": 3.0,
    "cryogen": "ETHANE",
}
HPF_PARAMS = {
    "pressure_bar": 2100.0,
    "carrier_type": "type A 100/200 µm",
    "cavity_depth_um": 100.0,
    "filler": "20% BSA",
}


def state(grid) -> str:
    """The grid's state as stored now."""
    from grids.models import Grid

    return Grid.objects.get(pk=grid.pk).state

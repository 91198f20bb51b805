"""Beamtime test data: proposals, sessions, facility staff, and characterization facts for the gate."""

from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from beamtime import services
from beamtime.models import Beamline, FacilityStaffAssignment, Proposal
from lims.models import FacilityStaff
from tests.factories import LabFactory, UserFactory

GOOD_FACTS = {
    "pre_vitrification_check": True,
    "post_vitrification_check": True,
    "ice_quality_class": 1,
    "intact_fraction": 0.8,
    "target_count": 5,
    "qc_decision": "accepted",
}


def beamline(code: str = "hzb-u41-txm") -> Beamline:
    return Beamline.objects.select_related("facility").get(code=code)


class ProposalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Proposal

    facility = factory.LazyFunction(lambda: beamline().facility)
    number = factory.Sequence(lambda n: f"P-{n:05d}")
    lab = factory.SubFactory(LabFactory)
    principal_investigator = "Dr. A. Researcher"
    title = "Mitochondrial remodelling in infected cells"
    shifts_allocated = 9
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - datetime.timedelta(days=30))
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=365))
    created_by = factory.SubFactory(UserFactory)


def staff_user(*, facility, username: str | None = None):
    user = UserFactory(**({"username": username} if username else {}))
    FacilityStaff.objects.get_or_create(user=user)
    FacilityStaffAssignment.objects.get_or_create(user=user, facility=facility)
    return user


def at(days: float, hour: int = 8) -> datetime.datetime:
    """A moment `days` from today at `hour` o'clock (current time zone)."""
    day = timezone.localdate() + datetime.timedelta(days=int(days))
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def schedule(*, proposal, by, days: int = 10, hours: int = 24, bl=None, **kwargs):
    """A session `days` from now lasting `hours`, booked through the service."""
    bl = bl or beamline()
    start = at(days)
    return services.session_schedule(
        beamline=bl, proposal=proposal, start=start, end=start + datetime.timedelta(hours=hours), by=by, **kwargs
    )

"""beamtime.demo.load is idempotent and reads its context defensively."""

from __future__ import annotations

from beamtime import demo
from beamtime.models import BeamtimeSession, Proposal, QualityPolicy, SampleSheetEntry
from lims.models import FacilityStaff
from tests.factories import UserFactory, make_grids


def test_demo_loads_once_and_puts_an_accepted_grid_on_the_sheet(lab, lab_admin, reviewer, facts):
    grids = make_grids(lab=lab, user=lab_admin, count=2, state="accepted")
    staff = UserFactory()
    FacilityStaff.objects.create(user=staff)
    ctx = {"lab": lab, "admin": lab_admin, "reviewer": reviewer, "facility_staff": staff, "accepted_grids": grids}
    demo.load(ctx)
    demo.load(dict(ctx))
    assert Proposal.objects.count() == 1
    assert BeamtimeSession.objects.count() == 1
    assert SampleSheetEntry.objects.get().grid == grids[0]
    assert QualityPolicy.objects.count() == 3


def test_demo_copes_with_an_empty_context(db):
    demo.load({})
    assert QualityPolicy.objects.count() == 3

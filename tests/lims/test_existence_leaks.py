"""Another lab's id and an id that does not exist get the same answer, in filters and in write payloads."""

from __future__ import annotations

import pytest

from beamtime.models import Proposal
from tests.beamtime.factories import ProposalFactory, beamline, schedule
from tests.factories import GridLotFactory, make_grids

pytestmark = pytest.mark.django_db

MISSING = 987_654


@pytest.fixture
def theirs(other_lab, outsider):
    """Records of the other lab: a lot with grids and a beamtime session."""
    lot = GridLotFactory(lab=other_lab, created_by=outsider)
    make_grids(lab=other_lab, user=outsider, count=1, lot=lot)
    proposal = ProposalFactory(lab=other_lab, created_by=outsider, facility=beamline().facility)
    session = schedule(proposal=proposal, by=outsider, days=10, hours=8)
    return {"lab": other_lab.pk, "lot": lot.pk, "session": session.pk}


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/grids/", "lab"),
        ("/api/v1/grids/", "lot"),
        ("/api/v1/grid-lots/", "lab"),
        ("/api/v1/storage-boxes/", "lab"),
        ("/api/v1/cell-lines/", "lab"),
        ("/api/v1/seedings/", "lab"),
        ("/api/v1/proposals/", "lab"),
        ("/api/v1/sessions/", "lab"),
        ("/api/v1/shipments/", "session"),
        ("/api/v1/shipments/", "lab"),
        ("/api/v1/sample-sheet-entries/", "session"),
        ("/api/v1/qc-decisions/", "lab"),
    ],
)
def test_a_filter_on_another_labs_id_answers_like_a_missing_id(api, theirs, path, param):
    other = api.get(path, {param: theirs[param]})
    missing = api.get(path, {param: MISSING})
    assert (other.status_code, other.json()) == (missing.status_code, missing.json())
    assert other.status_code == 200 and other.json()["count"] == 0
    text = api.get(path, {param: "abc"})
    assert text.status_code == 400


def test_a_filter_on_ones_own_id_still_filters(api, lab, member):
    make_grids(lab=lab, user=member, count=2)
    assert api.get("/api/v1/grids/", {"lab": lab.pk}).json()["count"] == 2


def test_a_proposal_for_another_labs_id_is_refused_like_a_missing_lab(api, theirs):
    def create(lab_id):
        return api.post(
            "/api/v1/proposals/",
            {"facility": beamline().facility_id, "number": f"P-{lab_id}", "lab": lab_id, "principal_investigator": "X",
             "title": "T", "shifts_allocated": 3, "valid_from": "2026-01-01", "valid_until": "2027-01-01"},
            format="json",
        )  # fmt: skip

    before = Proposal.objects.count()
    other, missing = create(theirs["lab"]), create(MISSING)
    assert other.status_code == missing.status_code == 400
    assert other.json()["lab"][0].replace(str(theirs["lab"]), "N") == missing.json()["lab"][0].replace(
        str(MISSING), "N"
    )
    assert Proposal.objects.count() == before

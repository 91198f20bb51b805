"""The gate on real characterization records (no stand-in facts): checks, scores and the QC decision."""

from __future__ import annotations

import pytest

from beamtime import quality, services
from characterization import services as characterization
from lims.errors import ConflictError
from tests.factories import make_grids


@pytest.fixture
def reviewed_grid(lab, member, reviewer):
    grid = make_grids(lab=lab, user=member, count=1, state="vitrified")[0]
    check = characterization.check_create(
        grid=grid, stage="post_vitrification", by=member, ice_quality_class=1, cell_integrity=5, grid_integrity=5
    )
    characterization.qc_decide(lm_check=check, decision="accepted", reasons="vitreous ice, intact cells", by=reviewer)
    grid.refresh_from_db()
    return grid


def test_facts_come_from_characterization(reviewed_grid):
    facts = quality.grid_quality_facts(reviewed_grid)
    assert facts["post_vitrification_check"] is True
    assert facts["ice_quality_class"] == 1
    assert facts["qc_accepted"] is True
    assert facts["target_count"] == 0


def test_an_accepted_grid_passes_a_policy_on_its_checks_and_joins(hzb, staff, member, session, reviewed_grid):
    policy = services.quality_policy_for(beamline=hzb)
    services.quality_policy_update(policy=policy, by=staff, rules=[
        {"metric": "post_vitrification_check", "operator": "eq", "threshold": 1},
        {"metric": "ice_quality_class", "operator": "le", "threshold": 2},
        {"metric": "qc_accepted", "operator": "eq", "threshold": 1},
    ])  # fmt: skip
    evaluation = quality.evaluate(grid=reviewed_grid, beamline=hzb)
    assert evaluation.passed, evaluation.summary()
    entry = services.sample_sheet_add(session=session, grid=reviewed_grid, by=member)
    assert entry.gate_passed


def test_the_default_gate_names_what_the_grid_still_lacks(hzb, member, session, reviewed_grid):
    with pytest.raises(ConflictError) as refused:
        services.sample_sheet_add(session=session, grid=reviewed_grid, by=member)
    failing = {r["metric"]: r["value"] for r in refused.value.details["failing_rules"]}
    assert failing == {"intact_fraction": None, "target_count": 0.0}

"""The gate: a beamline's quality policy, rule by rule."""

from __future__ import annotations

import pytest

from beamtime import quality, services
from lims.errors import DomainError, PermissionDeniedError
from tests.beamtime.factories import GOOD_FACTS


@pytest.mark.parametrize(
    ("metric", "bad_value"),
    [
        ("post_vitrification_check", False),
        ("ice_quality_class", 3),
        ("intact_fraction", 0.3),
        ("target_count", 2),
        ("qc_decision", "rejected"),
    ],
)
def test_each_default_rule_fails_on_its_own_bad_value(hzb, accepted_grids, facts, metric, bad_value):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, metric: bad_value}
    evaluation = quality.evaluate(grid=grid, beamline=hzb)
    assert not evaluation.passed
    failing = [r.metric for r in evaluation.failing]
    assert failing == ["qc_accepted" if metric == "qc_decision" else metric]
    assert len(evaluation.rules) == 5


def test_a_good_grid_passes_every_rule_with_value_and_threshold(hzb, accepted_grids, facts):
    evaluation = quality.evaluate(grid=accepted_grids[0], beamline=hzb)
    assert evaluation.passed
    by_metric = {r.metric: r for r in evaluation.rules}
    assert by_metric["ice_quality_class"].value == 1.0
    assert by_metric["ice_quality_class"].threshold == 2.0
    assert by_metric["ice_quality_class"].symbol == "≤"
    assert by_metric["intact_fraction"].value == 0.8
    assert by_metric["post_vitrification_check"].value is True
    assert all(r.passed for r in evaluation.rules)


def test_missing_values_fail_and_say_so(hzb, accepted_grids, facts):
    grid = accepted_grids[0]
    facts[grid.pk] = {}
    evaluation = quality.evaluate(grid=grid, beamline=hzb)
    assert {r.metric for r in evaluation.failing} == {
        "post_vitrification_check", "ice_quality_class", "intact_fraction", "target_count", "qc_accepted",
    }  # fmt: skip
    assert "no value" in evaluation.failing[1].message


@pytest.mark.parametrize(
    ("operator", "threshold", "value", "passed"),
    [("ge", 0.5, 0.5, True), ("gt", 0.5, 0.5, False), ("le", 2, 2, True), ("lt", 2, 2, False),
     ("eq", 1, 1, True), ("ne", 1, 1, False), ("ge", 0.5, None, False)],
)  # fmt: skip
def test_operators(operator, threshold, value, passed):
    result = quality.evaluate_rule(
        metric="intact_fraction", operator=operator, threshold=threshold, facts={"intact_fraction": value}
    )
    assert result.passed is passed


def test_staff_edit_the_policy_and_the_gate_follows(hzb, staff, accepted_grids, facts):
    grid = accepted_grids[0]
    facts[grid.pk] = {**GOOD_FACTS, "intact_fraction": 0.6}
    policy = services.quality_policy_for(beamline=hzb)
    services.quality_policy_update(
        policy=policy, by=staff, rules=[{"metric": "intact_fraction", "operator": "ge", "threshold": 0.7}]
    )
    evaluation = quality.evaluate(grid=grid, beamline=hzb)
    assert [(r.metric, r.passed) for r in evaluation.rules] == [("intact_fraction", False)]
    policy.refresh_from_db()
    assert policy.updated_by == staff


def test_only_staff_of_the_facility_edit_a_policy(hzb, member, alba_staff):
    policy = services.quality_policy_for(beamline=hzb)
    for user in (member, alba_staff):
        with pytest.raises(PermissionDeniedError):
            services.quality_policy_update(policy=policy, by=user, rules=[])


def test_policy_rules_are_validated(hzb, staff):
    policy = services.quality_policy_for(beamline=hzb)
    with pytest.raises(DomainError, match="metric"):
        services.quality_policy_update(
            policy=policy, by=staff, rules=[{"metric": "x", "operator": "ge", "threshold": 1}]
        )
    with pytest.raises(DomainError, match="threshold"):
        services.quality_policy_update(
            policy=policy, by=staff, rules=[{"metric": "focus", "operator": "ge", "threshold": "lots"}]
        )
    assert policy.rules.count() == 5

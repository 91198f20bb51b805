"""The gate: a beamline's quality policy evaluated over one grid's characterization facts.

`characterization_facts` and `grid_targets` are the places that read characterization (its typed
`GridQualityFacts`); everything else here is pure.
"""

from __future__ import annotations

import operator as op
from dataclasses import asdict, dataclass, field

from beamtime.models import Metric, Operator, QualityPolicy
from characterization import selectors as characterization_selectors
from characterization.selectors import GridQualityFacts

_COMPARE = {
    Operator.GE: op.ge,
    Operator.LE: op.le,
    Operator.GT: op.gt,
    Operator.LT: op.lt,
    Operator.EQ: op.eq,
    Operator.NE: op.ne,
}
BOOLEAN_METRICS = frozenset({Metric.PRE_CHECK, Metric.POST_CHECK, Metric.QC_ACCEPTED})


def characterization_facts(grid) -> GridQualityFacts:
    """What characterization knows about the grid (the one place the gate reads it)."""
    return characterization_selectors.grid_quality_facts(grid=grid)


def grid_quality_facts(grid) -> dict[str, float | bool | None]:
    """The gate's metrics for one grid, as {metric: value}; None = no value."""
    facts = characterization_facts(grid)
    return {metric: facts.value(metric) for metric in Metric.values}


def grid_targets(grid) -> list[dict]:
    """A grid's targets for the beamline (characterization's `grid_targets`: label, priority, square, offset_um…)."""
    return characterization_selectors.grid_targets(grid=grid)


@dataclass(frozen=True)
class RuleResult:
    metric: str
    label: str
    operator: str
    symbol: str
    threshold: float
    value: float | bool | None
    passed: bool
    message: str
    value_text: str = ""
    threshold_text: str = ""


@dataclass(frozen=True)
class Evaluation:
    grid_id: int
    grid_barcode: str
    beamline_id: int
    policy_id: int | None
    policy_name: str
    passed: bool
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def failing(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["failing_rules"] = [asdict(r) for r in self.failing]
        return data

    def summary(self) -> str:
        if self.passed:
            return f"{self.grid_barcode} passes {self.policy_name}."
        return f"{self.grid_barcode} fails {self.policy_name}: " + "; ".join(r.message for r in self.failing) + "."


def _as_number(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _format(metric: str, value) -> str:
    if value is None:
        return "no value"
    if metric in BOOLEAN_METRICS:
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def evaluate_rule(*, metric: str, operator: str, threshold: float, facts: dict) -> RuleResult:
    label = Metric(metric).label
    symbol = Operator(operator).label
    raw = facts.get(metric)
    number = _as_number(raw)
    passed = number is not None and bool(_COMPARE[Operator(operator)](number, float(threshold)))
    shown = None if number is None else (bool(number) if metric in BOOLEAN_METRICS else number)
    want = _format(metric, bool(threshold) if metric in BOOLEAN_METRICS else float(threshold))
    message = f"{label}: {_format(metric, shown)} (needs {symbol} {want})"
    return RuleResult(
        metric, label, operator, symbol, float(threshold), shown, passed, message, _format(metric, shown), want
    )


def evaluate(*, grid, beamline, facts: dict | None = None) -> Evaluation:
    """Every rule of the beamline's policy with its value, threshold and pass/fail. No policy: nothing to pass."""
    policy = QualityPolicy.objects.filter(beamline=beamline).prefetch_related("rules").first()
    facts = grid_quality_facts(grid) if facts is None else facts
    rules = [
        evaluate_rule(metric=r.metric, operator=r.operator, threshold=r.threshold, facts=facts)
        for r in (policy.rules.all() if policy else [])
    ]
    return Evaluation(
        grid_id=grid.pk,
        grid_barcode=grid.barcode,
        beamline_id=beamline.pk,
        policy_id=policy.pk if policy else None,
        policy_name=policy.name if policy else f"{beamline} (no policy)",
        passed=all(r.passed for r in rules),
        rules=rules,
    )

"""The gate: a beamline's quality policy evaluated over one grid's characterization facts.

`grid_quality_facts` is the one place that reads characterization; everything else here is pure.
"""

from __future__ import annotations

import operator as op
from dataclasses import asdict, dataclass, field

from beamtime.models import Metric, Operator, QualityPolicy

_COMPARE = {
    Operator.GE: op.ge,
    Operator.LE: op.le,
    Operator.GT: op.gt,
    Operator.LT: op.lt,
    Operator.EQ: op.eq,
    Operator.NE: op.ne,
}
BOOLEAN_METRICS = frozenset({Metric.PRE_CHECK, Metric.POST_CHECK, Metric.QC_ACCEPTED})


def characterization_facts(grid) -> dict | None:
    """The adapter: `characterization.selectors.grid_quality_facts(grid=…)`, or None while it does not exist."""
    try:
        from characterization.selectors import grid_quality_facts as selector
    except ImportError:
        return None
    return dict(selector(grid=grid) or {})


def grid_quality_facts(grid) -> dict:
    """What characterization knows about a grid, as {metric: value}; None or absent = no value.

    Until characterization's selector exists, the only fact known is the QC decision implied by the grid's
    lifecycle state.
    """
    raw = characterization_facts(grid)
    known = raw is not None
    raw = raw or {}
    facts = {key: raw.get(key) for key in Metric.values if key in raw}
    for metric, id_key in (("post_vitrification_check", "post_check_id"), ("pre_vitrification_check", "pre_check_id")):
        if metric not in raw and id_key in raw:
            facts[metric] = raw[id_key] is not None
    if "qc_accepted" not in raw:
        decision = raw.get("qc_decision") if known else _decision_from_state(grid)
        if isinstance(decision, dict):
            decision = decision.get("decision") or decision.get("outcome")
        facts["qc_accepted"] = None if decision is None else str(decision).lower() == "accepted"
    if "target_count" not in raw and "targets" in raw:
        facts["target_count"] = raw["targets"] if isinstance(raw["targets"], int) else len(raw["targets"] or ())
    return facts


def grid_targets(grid) -> list[dict]:
    """A grid's targets as {label, priority, square, offset_um}: characterization's `grid_targets` selector,
    or, while it does not exist, its post-vitrification Target rows (square/offset only if they carry them)."""
    try:
        from characterization import selectors
    except ImportError:
        return []
    if hasattr(selectors, "grid_targets"):
        return [dict(t) for t in selectors.grid_targets(grid=grid)]
    try:
        from characterization.models import CheckStage, Target
    except ImportError:
        return []
    rows = (
        Target.objects.filter(image__lm_check__grid=grid, image__lm_check__stage=CheckStage.POST_VITRIFICATION)
        .select_related("image__lm_check__grid__lot__grid_type")
        .order_by("priority", "id")
    )
    position = getattr(selectors, "target_position", None)
    out = []
    for t in rows:
        where = (position(target=t) if position else None) or {}
        out.append(
            {
                "label": t.label,
                "priority": t.priority,
                "square": where.get("square", getattr(t, "square", None)),
                "offset_um": where.get("offset_um", getattr(t, "offset_um", None)),
            }
        )
    return out


def _decision_from_state(grid) -> str | None:
    return {"accepted": "accepted", "rejected": "rejected"}.get(grid.state)


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

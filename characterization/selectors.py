"""Read queries on checks, images, targets and decisions, shared by pages, the API and the beamtime gate."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from characterization.models import (
    Check,
    CheckImage,
    CheckStage,
    Decision,
    ImageKind,
    MetricsStatus,
    QCDecision,
    Target,
)
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions

# Grid states in which a post-vitrification check can still be decided.
REVIEWABLE_STATES = (GridState.VITRIFIED, GridState.ACCEPTED, GridState.REJECTED)


def check_list(*, user, filters: dict | None = None) -> QuerySet[Check]:
    qs = (
        permissions.scope(Check.objects.all(), user)
        .select_related("lab", "grid__lot__grid_type", "operator")
        .annotate(image_count=Count("images", distinct=True))
        .order_by("-checked_at", "-id")  # explicit: Meta.ordering is dropped on GROUP BY queries
    )
    filters = filters or {}
    if grid := filters.get("grid"):
        qs = qs.filter(grid_id=grid)
    if stage := filters.get("stage"):
        qs = qs.filter(stage=stage)
    return qs


def check_get(*, user, pk: int) -> Check:
    return get_object_or_404(check_list(user=user), pk=pk)


def check_image_list(*, user) -> QuerySet[CheckImage]:
    return permissions.scope(CheckImage.objects.all(), user, "lm_check__lab").select_related(
        "lm_check__grid__lot__grid_type", "uploaded_by"
    )


def check_image_get(*, user, pk: int) -> CheckImage:
    return get_object_or_404(check_image_list(user=user), pk=pk)


def target_list(*, user) -> QuerySet[Target]:
    return permissions.scope(Target.objects.all(), user, "image__lm_check__lab").select_related(
        "image__lm_check__grid__lot__grid_type", "created_by"
    )


def qc_decision_list(*, user) -> QuerySet[QCDecision]:
    return permissions.scope(QCDecision.objects.all(), user).select_related("grid", "lm_check", "decided_by")


def review_queue(*, user) -> QuerySet[Check]:
    """The latest post-vitrification check of each grid that can still be decided, when no decision was
    made on it yet; oldest first.

    Only the labs where the user reviews (qc_reviewer or lab_admin; superusers everywhere).
    """
    from lims.models import Role

    qs = Check.objects.all()
    if not getattr(user, "is_superuser", False):
        qs = qs.filter(lab_id__in=permissions.lab_ids(user, roles=[Role.QC_REVIEWER, Role.LAB_ADMIN]))
    return (
        qs.filter(stage=CheckStage.POST_VITRIFICATION, grid__state__in=REVIEWABLE_STATES)
        .annotate(
            decided=Exists(QCDecision.objects.filter(lm_check=OuterRef("pk"))),
            superseded=Exists(
                Check.objects.filter(
                    grid=OuterRef("grid"), stage=CheckStage.POST_VITRIFICATION, checked_at__gt=OuterRef("checked_at")
                )
            ),
        )
        .filter(decided=False, superseded=False)
        .select_related("lab", "grid__lot__grid_type", "operator")
        .annotate(image_count=Count("images", distinct=True), target_count=Count("images__targets", distinct=True))
        .order_by("checked_at", "id")
    )


def grid_checks(*, grid: Grid) -> QuerySet[Check]:
    """A grid's checks, newest first, with their images (for the grid page and API record)."""
    return (
        Check.objects.filter(grid=grid)
        .select_related("operator")
        .prefetch_related(Prefetch("images", queryset=CheckImage.objects.order_by("uploaded_at", "id")))
        .order_by("-checked_at", "-id")
    )


def grid_decisions(*, grid: Grid) -> QuerySet[QCDecision]:
    """Every decision on the grid, newest first (the first one is in force)."""
    return QCDecision.objects.filter(grid=grid).select_related("decided_by").order_by("-decided_at", "-id")


def _latest_metrics(images, key: str):
    """The value of metric `key` from the newest finished image that has it."""
    for image in sorted(images, key=lambda i: (i.uploaded_at, i.pk), reverse=True):
        if image.metrics_status == MetricsStatus.DONE and image.metrics.get(key) is not None:
            return image.metrics[key]
    return None


@dataclass(frozen=True)
class GridQualityFacts:
    """What characterization knows about one grid's light-microscopy QC; the beamtime gate reads it.

    Scores: ``cell_density`` 1–5 (3 = target), ``morphology`` 1–5 (5 best) from the latest
    pre-vitrification check; ``ice_quality_class`` 1 best … 4 worst, ``cell_integrity`` and
    ``grid_integrity`` 1 worst … 5 best from the latest post-vitrification check. Atlas metrics
    (``squares_found``, ``intact_fraction`` 0–1, ``contamination_spots``) come from that check's newest
    analysed atlas image, image metrics (``focus``, ``saturated_fraction``, ``coverage_fraction``) from
    its newest analysed image. None means unknown.
    """

    grid_id: int
    check_count: int = 0
    pre_vitrification_check: bool = False
    post_vitrification_check: bool = False
    pre_check_id: int | None = None
    cell_density: int | None = None
    morphology: int | None = None
    post_check_id: int | None = None
    ice_quality_class: int | None = None
    cell_integrity: int | None = None
    grid_integrity: int | None = None
    squares_found: float | None = None
    intact_fraction: float | None = None
    contamination_spots: float | None = None
    focus: float | None = None
    saturated_fraction: float | None = None
    coverage_fraction: float | None = None
    target_count: int = 0
    calibrated_target_count: int = 0
    qc_decision: str | None = None
    qc_decision_id: int | None = None
    qc_decided_at: datetime | None = None
    qc_reasons: str | None = None

    @property
    def qc_accepted(self) -> bool | None:
        """Whether the latest QC decision accepted the grid (None: not decided yet)."""
        return None if self.qc_decision is None else self.qc_decision == Decision.ACCEPTED

    def value(self, name: str) -> float | bool | None:
        """A fact by name (a gate metric); unknown names read as None."""
        return getattr(self, name, None) if name in _FACT_NAMES else None


_FACT_NAMES = frozenset({f.name for f in fields(GridQualityFacts)} | {"qc_accepted"})


def grid_quality_facts(*, grid: Grid) -> GridQualityFacts:
    """The QC facts of one grid (see :class:`GridQualityFacts`)."""
    checks = list(grid_checks(grid=grid))
    post = next((c for c in checks if c.stage == CheckStage.POST_VITRIFICATION), None)
    pre = next((c for c in checks if c.stage == CheckStage.PRE_VITRIFICATION), None)
    post_images = list(post.images.all()) if post else []
    atlases = [i for i in post_images if i.kind == ImageKind.ATLAS]
    targets = Target.objects.filter(image__lm_check__grid=grid, image__lm_check__stage=CheckStage.POST_VITRIFICATION)
    decision = grid_decisions(grid=grid).first()
    return GridQualityFacts(
        grid_id=grid.pk,
        check_count=len(checks),
        pre_vitrification_check=pre is not None,
        post_vitrification_check=post is not None,
        pre_check_id=pre.pk if pre else None,
        cell_density=pre.cell_density if pre else None,
        morphology=pre.morphology if pre else None,
        post_check_id=post.pk if post else None,
        ice_quality_class=post.ice_quality_class if post else None,
        cell_integrity=post.cell_integrity if post else None,
        grid_integrity=post.grid_integrity if post else None,
        **{key: _latest_metrics(atlases, key) for key in ("squares_found", "intact_fraction", "contamination_spots")},
        **{key: _latest_metrics(post_images, key) for key in ("focus", "saturated_fraction", "coverage_fraction")},
        target_count=targets.count(),
        calibrated_target_count=targets.filter(image__calibration__isnull=False).count(),
        qc_decision=decision.decision if decision else None,
        qc_decision_id=decision.pk if decision else None,
        qc_decided_at=decision.decided_at if decision else None,
        qc_reasons=decision.reasons if decision else None,
    )


def target_position(*, target: Target) -> dict | None:
    """Where a target lies on the grid, from its image's calibration; None when not calibrated.

    {"square": "C4" (None when off the finder pattern), "offset_um": [dx, dy] from that square's
    centre, "grid_um": [x, y] from the centre of the first square}.
    """
    from characterization.calibration import nearest_square

    image = target.image
    if not image.calibration:
        return None
    (a, b, c), (d, e, f) = image.calibration["matrix"]
    gx, gy = a * target.x + b * target.y + c, d * target.x + e * target.y + f
    grid_type = image.lm_check.grid.lot.grid_type
    pitch = image.calibration.get("pitch_um") or grid_type.square_pitch_um
    row, column, dx, dy = nearest_square(gx, gy, pitch)
    try:
        square = grid_type.square_name(row, column)
    except ValueError:
        square = None
    return {"square": square, "offset_um": [round(dx, 3), round(dy, 3)], "grid_um": [round(gx, 3), round(gy, 3)]}


def grid_targets(*, grid: Grid) -> list[dict]:
    """The targets on a grid's post-vitrification images, for export to the beamline.

    Each: ``target_id``, ``image_id``, ``check_id``, ``label``, ``priority`` (1 highest), ``x``/``y``
    (pixels), ``square`` ("C4", or None before calibration or off the pattern) and ``offset_um``
    ([dx, dy] µm from the square's centre, or None), ``calibration_residual_um``.
    """
    targets = (
        Target.objects.filter(image__lm_check__grid=grid, image__lm_check__stage=CheckStage.POST_VITRIFICATION)
        .select_related("image__lm_check__grid__lot__grid_type")
        .order_by("priority", "image__lm_check__checked_at", "id")
    )
    rows = []
    for target in targets:
        position = target_position(target=target)
        rows.append(
            {
                "target_id": target.pk,
                "image_id": target.image_id,
                "check_id": target.image.lm_check_id,
                "label": target.label,
                "priority": target.priority,
                "x": target.x,
                "y": target.y,
                "square": position["square"] if position else None,
                "offset_um": position["offset_um"] if position else None,
                "calibration_residual_um": target.image.calibration_residual_um,
            }
        )
    return rows

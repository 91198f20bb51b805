"""The characterization sections of a grid's provenance: checks (scores, images with metrics, targets) and
QC decisions, each with who and when."""

from __future__ import annotations

from django.db.models import Prefetch

from characterization.models import Check, CheckImage, QCDecision, Target
from grids.provenance import when, who

CHECK_SCORES = (
    "microscope", "microscope_stage", "objective", "cell_density", "morphology", "ice_quality_class",
    "cell_integrity", "grid_integrity", "notes",
)  # fmt: skip


def _image(image: CheckImage) -> dict:
    from characterization.api import metrics_object

    return {
        "id": image.pk,
        "kind": image.kind,
        "modality": image.modality,
        "original_name": image.original_name,
        "sha256": image.sha256,
        "size_bytes": image.size_bytes,
        "format": image.format,
        "shape": {"width": image.width, "height": image.height, "channels": image.channels, "planes": image.planes},
        "pixel_size_um": image.pixel_size_um,
        "channel_names": image.channel_names,
        "metrics_status": image.metrics_status,
        "metrics": metrics_object(image),
        "calibrated": image.calibration is not None,
        "calibration_residual_um": image.calibration_residual_um,
        "targets": [
            {
                "id": t.pk,
                "label": t.label,
                "x": t.x,
                "y": t.y,
                "priority": t.priority,
                "notes": t.notes,
                "created_by": who(t.created_by),
                "created_at": when(t.created_at),
            }  # fmt: skip
            for t in image.targets.all()
        ],
        "uploaded_by": who(image.uploaded_by),
        "uploaded_at": when(image.uploaded_at),
    }


def checks_section(grid, request=None) -> list[dict]:
    images = CheckImage.objects.select_related("uploaded_by").prefetch_related(
        Prefetch("targets", queryset=Target.objects.select_related("created_by").order_by("priority", "pk"))
    )
    checks = (
        Check.objects.filter(grid=grid)
        .select_related("operator", "created_by")
        .prefetch_related(Prefetch("images", queryset=images.order_by("pk")))
        .order_by("checked_at", "pk")
    )
    return [
        {
            "id": c.pk,
            "stage": c.stage,
            "scores": {name: getattr(c, name) for name in CHECK_SCORES},
            "images": [_image(i) for i in c.images.all()],
            "operator": who(c.operator),
            "checked_at": when(c.checked_at),
            "recorded_by": who(c.created_by),
            "recorded_at": when(c.created_at),
        }
        for c in checks
    ]


def qc_decisions_section(grid, request=None) -> list[dict]:
    decisions = QCDecision.objects.filter(grid=grid).select_related("decided_by").order_by("decided_at", "pk")
    return [
        {
            "id": d.pk,
            "check": d.lm_check_id,
            "decision": d.decision,
            "reasons": d.reasons,
            "decided_by": who(d.decided_by),
            "decided_at": when(d.decided_at),
        }  # fmt: skip
        for d in decisions
    ]

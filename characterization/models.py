"""Light-microscopy checks of grids, their images and metrics, targets and QC decisions.

Score scales (stored as small integers so the beamtime quality gate can compare them):

- ``cell_density`` (pre): 1 none · 2 sparse (< 1 cell per square) · 3 good (1–3 per square)
  · 4 dense (> 3 per square) · 5 confluent. 3 is the target.
- ``morphology`` (pre): 1 dead or detached · 2 rounded, stressed · 3 mixed · 4 mostly spread · 5 spread, healthy.
- ``ice_quality_class`` (post): 1 vitreous, thin · 2 vitreous, thick · 3 partly crystalline
  · 4 crystalline or too thick. LOWER IS BETTER (a class, not a score).
- ``cell_integrity`` and ``grid_integrity`` (post): 1 destroyed · 2 poor · 3 fair · 4 good · 5 intact.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from grids.models import Grid
from lims.models import Lab


class CheckStage(models.TextChoices):
    PRE_VITRIFICATION = "pre_vitrification", "Pre-vitrification"
    POST_VITRIFICATION = "post_vitrification", "Post-vitrification"


class CellDensity(models.IntegerChoices):
    NONE = 1, "1 · none"
    SPARSE = 2, "2 · sparse (< 1 cell per square)"
    GOOD = 3, "3 · good (1–3 cells per square)"
    DENSE = 4, "4 · dense (> 3 cells per square)"
    CONFLUENT = 5, "5 · confluent"


class Morphology(models.IntegerChoices):
    DEAD = 1, "1 · dead or detached"
    STRESSED = 2, "2 · rounded, stressed"
    MIXED = 3, "3 · mixed"
    MOSTLY_SPREAD = 4, "4 · mostly spread"
    HEALTHY = 5, "5 · spread, healthy"


class IceQualityClass(models.IntegerChoices):
    """Lower is better."""

    VITREOUS_THIN = 1, "1 · vitreous, thin"
    VITREOUS_THICK = 2, "2 · vitreous, thick"
    PARTLY_CRYSTALLINE = 3, "3 · partly crystalline"
    CRYSTALLINE = 4, "4 · crystalline or too thick"


class CellIntegrity(models.IntegerChoices):
    DESTROYED = 1, "1 · cells destroyed"
    POOR = 2, "2 · cells mostly damaged"
    FAIR = 3, "3 · cells partly damaged"
    GOOD = 4, "4 · cells mostly intact"
    INTACT = 5, "5 · cells intact"


class GridIntegrity(models.IntegerChoices):
    DESTROYED = 1, "1 · grid bent or film gone"
    POOR = 2, "2 · most squares broken"
    FAIR = 3, "3 · many squares broken"
    GOOD = 4, "4 · a few squares broken"
    INTACT = 5, "5 · grid flat, film intact"


# Which manual scores belong to which stage (a score of the other stage is refused).
STAGE_SCORES: dict[str, tuple[str, ...]] = {
    CheckStage.PRE_VITRIFICATION: ("cell_density", "morphology"),
    CheckStage.POST_VITRIFICATION: ("ice_quality_class", "cell_integrity", "grid_integrity"),
}
ALL_SCORES: tuple[str, ...] = tuple(s for scores in STAGE_SCORES.values() for s in scores)


def _between(field: str, low: int, high: int) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": low, f"{field}__lte": high})


class Check(models.Model):
    """One light-microscopy look at a grid at a stage of its path."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="checks")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="checks")
    # The grid's dashboard summary, joined on grid_id without passing through the grid (no column).
    summary = models.ForeignObject(
        "characterization.GridSummary", on_delete=models.DO_NOTHING, from_fields=["grid"], to_fields=["grid"], null=True, serialize=False,
        related_name="+",
    )  # fmt: skip
    stage = models.CharField(max_length=20, choices=CheckStage.choices)
    microscope = models.CharField(max_length=120, blank=True, help_text="e.g. Zeiss LSM 900, Leica EM Cryo CLEM")
    microscope_stage = models.CharField(
        max_length=120, blank=True, help_text="Stage or cryo stage, e.g. Linkam CMS196, room temperature"
    )
    objective = models.CharField(max_length=120, blank=True, help_text="e.g. 10x/0.3 air, 50x/0.9 cryo")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    checked_at = models.DateTimeField()
    cell_density = models.PositiveSmallIntegerField(choices=CellDensity.choices, null=True, blank=True)
    morphology = models.PositiveSmallIntegerField(choices=Morphology.choices, null=True, blank=True)
    ice_quality_class = models.PositiveSmallIntegerField(
        choices=IceQualityClass.choices, null=True, blank=True, help_text="1 best (vitreous, thin) … 4 worst"
    )
    cell_integrity = models.PositiveSmallIntegerField(choices=CellIntegrity.choices, null=True, blank=True)
    grid_integrity = models.PositiveSmallIntegerField(choices=GridIntegrity.choices, null=True, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["summary"])

    class Meta:
        ordering = ["-checked_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(stage__in=CheckStage.values), name="check_stage_valid"),
            models.CheckConstraint(condition=_between("cell_density", 1, 5), name="check_cell_density_scale"),
            models.CheckConstraint(condition=_between("morphology", 1, 5), name="check_morphology_scale"),
            models.CheckConstraint(condition=_between("ice_quality_class", 1, 4), name="check_ice_class_scale"),
            models.CheckConstraint(condition=_between("cell_integrity", 1, 5), name="check_cell_integrity_scale"),
            models.CheckConstraint(condition=_between("grid_integrity", 1, 5), name="check_grid_integrity_scale"),
        ]
        indexes = [models.Index(fields=["lab", "stage", "checked_at"]), models.Index(fields=["grid", "checked_at"])]

    def __str__(self) -> str:
        return f"{self.get_stage_display()} check {self.pk} of {self.grid}"


class ImageKind(models.TextChoices):
    CELLS = "cells", "Cells (field of view)"
    ATLAS = "atlas", "Atlas (whole grid, low magnification)"


class Modality(models.TextChoices):
    FLUORESCENCE = "fluorescence", "Fluorescence (bright objects on dark)"
    BRIGHTFIELD = "brightfield", "Bright field / transmitted (dark objects on bright)"
    REFLECTION = "reflection", "Reflected light (bright objects on dark)"


class ImageFormat(models.TextChoices):
    TIFF = "tiff", "TIFF"
    OME_TIFF = "ome-tiff", "OME-TIFF"
    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"


class MetricsStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


_EXTENSIONS = {"tiff": "tif", "ome-tiff": "ome.tif", "png": "png", "jpeg": "jpg"}


def image_folder(instance: CheckImage) -> str:
    """Private storage folder of one image: lab / check / first 16 hex digits of the SHA-256."""
    return f"characterization/{instance.lm_check.lab_id}/{instance.lm_check_id}/{instance.sha256[:16]}"


def original_path(instance: CheckImage, filename: str) -> str:
    return f"{image_folder(instance)}/original.{_EXTENSIONS.get(instance.format, 'bin')}"


class CheckImage(models.Model):
    """An image of a check: the original byte for byte, derived previews, metrics and calibration."""

    # Named lm_check: a field called `check` would shadow Model.check() (the system checks).
    lm_check = models.ForeignKey(Check, on_delete=models.PROTECT, related_name="images")
    kind = models.CharField(max_length=10, choices=ImageKind.choices, default=ImageKind.CELLS)
    modality = models.CharField(max_length=20, choices=Modality.choices, default=Modality.FLUORESCENCE)
    # The original, kept byte for byte (private storage; served through a lab-checked view).
    file = models.FileField(upload_to=original_path, max_length=300)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    format = models.CharField(max_length=10, choices=ImageFormat.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField(default=1)
    planes = models.PositiveIntegerField(default=1, help_text="Z planes × time points")
    bit_depth = models.PositiveSmallIntegerField()
    # From the metadata where present, editable where not.
    pixel_size_um = models.FloatField(null=True, blank=True)
    channel_names = models.JSONField(default=list, blank=True)
    objective = models.CharField(max_length=120, blank=True)
    metadata_source = models.CharField(max_length=20, blank=True, help_text="ome, tiff, or empty (entered by hand)")
    # Derived, regenerated by the metrics task.
    preview = models.FileField(max_length=300, blank=True)
    thumbnail = models.FileField(max_length=300, blank=True)
    channel_previews = models.JSONField(default=list, blank=True)
    # Automatic metrics.
    metrics = models.JSONField(default=dict, blank=True)
    metrics_status = models.CharField(max_length=10, choices=MetricsStatus.choices, default=MetricsStatus.PENDING)
    metrics_progress = models.PositiveSmallIntegerField(default=0)
    metrics_error = models.TextField(blank=True)
    metrics_version = models.CharField(max_length=20, blank=True)
    metrics_started_at = models.DateTimeField(null=True, blank=True)
    metrics_finished_at = models.DateTimeField(null=True, blank=True)
    # Pixel → grid (µm) affine map from ≥ 3 landmarks: {"matrix": [[a, b, c], [d, e, f]], "landmarks": […]}.
    calibration = models.JSONField(null=True, blank=True)
    calibration_residual_um = models.FloatField(null=True, blank=True)
    calibrated_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ImageKind.values), name="checkimage_kind_valid"),
            models.CheckConstraint(condition=Q(modality__in=Modality.values), name="checkimage_modality_valid"),
            models.CheckConstraint(condition=Q(format__in=ImageFormat.values), name="checkimage_format_valid"),
            models.CheckConstraint(
                condition=Q(metrics_status__in=MetricsStatus.values), name="checkimage_metrics_status_valid"
            ),
            models.CheckConstraint(condition=Q(metrics_progress__lte=100), name="checkimage_progress_le_100"),
            models.CheckConstraint(
                condition=Q(pixel_size_um__isnull=True) | Q(pixel_size_um__gt=0), name="checkimage_pixel_size_positive"
            ),
            models.UniqueConstraint(fields=["lm_check", "sha256"], name="checkimage_unique_per_check"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.lm_check})"

    @property
    def lab_id(self) -> int:
        return self.lm_check.lab_id


class Target(models.Model):
    """A point of interest (a cell to image at the beamline) placed on an image, in pixels."""

    image = models.ForeignKey(CheckImage, on_delete=models.PROTECT, related_name="targets")
    label = models.CharField(max_length=80)
    x = models.FloatField(help_text="pixels from the left edge")
    y = models.FloatField(help_text="pixels from the top edge")
    priority = models.PositiveSmallIntegerField(default=2, help_text="1 highest … 3 lowest")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(x__gte=0, y__gte=0), name="target_inside_image"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=3), name="target_priority_scale"),
        ]

    def __str__(self) -> str:
        return f"{self.label} on {self.image}"


class Decision(models.TextChoices):
    ACCEPTED = "accepted", "Accept"
    REJECTED = "rejected", "Reject"


class QCDecision(models.Model):
    """A reviewer's accept or reject of a grid, based on a check. Never edited: a revision is a new row."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="qc_decisions")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="qc_decisions")
    lm_check = models.ForeignKey(Check, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reasons = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="qcdecision_valid"),
            models.CheckConstraint(condition=~Q(reasons=""), name="qcdecision_has_reasons"),
        ]
        indexes = [models.Index(fields=["grid", "decided_at"])]

    def __str__(self) -> str:
        return f"{self.grid}: {self.decision} by {self.decided_by}"


class GridSummary(models.Model):
    """What the QC dashboard needs of one grid, in one row: its filters, how far it got and its QC.

    Kept by `characterization.summaries.grid_summaries_refresh`, which every service that changes these
    facts calls (through `grids.insights.grid_facts_changed` for the apps below this one). It is derived
    data: `manage.py grid_summaries_rebuild` recomputes every row from the records. It exists so that each
    dashboard panel is one grouped query over a table of one row a grid, without joins or per-grid
    subqueries (the dashboard's 300 ms at 100 000 grids).
    """

    grid = models.OneToOneField(Grid, on_delete=models.CASCADE, primary_key=True, related_name="qc_summary")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="+", db_index=False)
    grid_type = models.ForeignKey("grids.GridType", on_delete=models.CASCADE, related_name="+", db_index=False)
    state = models.CharField(max_length=20)
    registered_at = models.DateTimeField()
    cell_line = models.ForeignKey(
        "grids.CellLine", on_delete=models.CASCADE, null=True, related_name="+", db_index=False
    )
    seeded_at = models.DateTimeField(null=True)
    # How it was vitrified: "plunger", "hpf" or "" (not yet), the instrument and the plunge parameters.
    method = models.CharField(max_length=10, blank=True)
    instrument = models.ForeignKey(
        "vitrification.Instrument", on_delete=models.CASCADE, null=True, related_name="+", db_index=False
    )
    blot_time_s = models.FloatField(null=True)
    humidity_percent = models.FloatField(null=True)
    # The decision in force (the newest), "" before any.
    decision = models.CharField(max_length=10, blank=True)
    # The newest post-vitrification check: when, and the ice class it gave.
    post_checked_at = models.DateTimeField(null=True)
    ice_quality_class = models.PositiveSmallIntegerField(null=True)
    # Funnel steps reached, a bit each (grids.insights.FunnelStage.bit).
    reached = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["lab", "registered_at"], name="char_gridsummary_lab_date")]

    def __str__(self) -> str:
        return f"summary of grid {self.grid_id}"

"""Datasets (tilt series taken at the beamline), reconstruction jobs (split into slabs of slices) and volumes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from beamtime.models import BeamtimeSession
from characterization.models import Target
from grids.models import Grid
from lims.models import Lab
from lims.ranges import InRange, range_check
from reconstruction import ranges as _ranges  # noqa: F401  (registers the table the validators name)


class DatasetFormat(models.TextChoices):
    MRC = "mrc", "MRC stack with IMOD tilt angles"
    TIFF = "tiff", "TIFF stack with tilt angles"
    NXTOMO = "nxtomo", "HDF5 / NXtomo"
    FOCAL_SERIES = "focal", "Focal series (MRC or TIFF with a focal-series sidecar)"


class ProjectionValues(models.TextChoices):
    """What the numbers in the projections are; the engine reconstructs absorbance."""

    ABSORBANCE = "absorbance", "Absorbance (−ln I/I₀)"
    TRANSMISSION = "transmission", "Transmission (I/I₀, flat-field corrected)"
    COUNTS = "counts", "Raw counts with flat and dark frames"


class DatasetStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a decision"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


def dataset_folder(dataset: Dataset, filename: str) -> str:
    return f"reconstruction/datasets/{dataset.lab_id}/{uuid.uuid4().hex}/{filename}"


class Dataset(models.Model):
    """A tilt series of one grid taken in one beamtime session (uploaded, or registered under a data root)."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="datasets")
    session = models.ForeignKey(BeamtimeSession, on_delete=models.PROTECT, related_name="datasets")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="datasets")
    # The grid's dashboard summary, joined on grid_id without passing through the grid (no column).
    summary = models.ForeignObject(
        "characterization.GridSummary", on_delete=models.DO_NOTHING, from_fields=["grid"], to_fields=["grid"], null=True, serialize=False,
        related_name="+",
    )  # fmt: skip
    target = models.ForeignKey(Target, on_delete=models.SET_NULL, null=True, blank=True, related_name="datasets")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=10, choices=DatasetFormat.choices)
    # Uploaded files live in MEDIA_ROOT (`file`); registered ones stay where the facility keeps them (`source_path`).
    file = models.FileField(upload_to=dataset_folder, max_length=500, blank=True)
    source_path = models.CharField(max_length=1000, blank=True)
    sidecar = models.JSONField(null=True, blank=True, help_text="Focal-series sidecar (focal planes, zone plate)")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    projection_values = models.CharField(
        max_length=20, choices=ProjectionValues.choices, default=ProjectionValues.ABSORBANCE
    )
    tilts = models.PositiveIntegerField()
    focal_planes = models.PositiveSmallIntegerField(default=1)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    angles = models.JSONField(help_text="Tilt angles in degrees, in acquisition order")
    focal_planes_um = models.JSONField(null=True, blank=True)
    pixel_size_nm = models.FloatField(validators=[InRange("pixel_size_nm")])
    photon_energy_ev = models.FloatField(validators=[InRange("photon_energy_ev")], null=True, blank=True)
    exposure_s = models.FloatField(validators=[InRange("exposure_s")], null=True, blank=True)
    zone_plate_outer_zone_nm = models.FloatField(
        validators=[InRange("zone_plate_outer_zone_nm")], null=True, blank=True
    )
    zone_plate_diameter_um = models.FloatField(validators=[InRange("zone_plate_diameter_um")], null=True, blank=True)
    metadata_source = models.JSONField(default=dict, help_text="Where each acquisition value came from: file or form")
    alignment = models.JSONField(
        null=True,
        blank=True,
        help_text="Drift correction found when the series was read: {shifts: [[rows, columns], ...] px per tilt, "
        "axis_offset px, residual_px, max_shift_px, binning}; null for a focal series or before it was computed",
    )
    relative_noise = models.FloatField(
        null=True,
        blank=True,
        help_text="The series' noise σ over its 99th-percentile absorbance, estimated when it was read: sets SIRT's "
        "iteration count for the whole volume (every slab and both FSC halves alike); null before it was computed",
    )
    montage = models.FileField(max_length=500, blank=True)
    status = models.CharField(max_length=12, choices=DatasetStatus.choices, default=DatasetStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(
        excluded_fields=["angles", "sidecar", "metadata_source", "alignment", "relative_noise", "summary"]
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "-created_at"]), models.Index(fields=["grid"])]
        constraints = [
            # One file is one dataset of a grid; the same bytes twice are refused.
            models.UniqueConstraint(fields=["grid", "sha256"], name="dataset_file_once_per_grid"),
            models.CheckConstraint(condition=~Q(file="") | ~Q(source_path=""), name="dataset_has_a_file"),
            models.CheckConstraint(condition=Q(tilts__gte=2, rows__gte=1, columns__gte=1), name="dataset_shape"),
            models.CheckConstraint(condition=Q(focal_planes__gte=1), name="dataset_focal_planes"),
            models.CheckConstraint(condition=range_check("pixel_size_nm", nullable=False), name="dataset_pixel_size"),
            models.CheckConstraint(condition=range_check("photon_energy_ev", nullable=True), name="dataset_energy"),
            models.CheckConstraint(condition=range_check("exposure_s", nullable=True), name="dataset_exposure"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_by__isnull=False), name="dataset_decision_has_a_person"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.grid})"

    @property
    def pixel_size_um(self) -> float:
        return self.pixel_size_nm / 1000.0

    @property
    def tilt_range(self) -> tuple[float, float]:
        return (min(self.angles), max(self.angles)) if self.angles else (0.0, 0.0)

    @property
    def has_zone_plate(self) -> bool:
        return self.zone_plate_outer_zone_nm is not None


class DatasetTransition(models.Model):
    """Audit of a dataset's acceptance or rejection."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=12)
    to_status = models.CharField(max_length=12)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"dataset {self.dataset_id}: {self.from_status} → {self.to_status}"


class DatasetUpload(models.Model):
    """A large file arriving in chunks; becomes a Dataset only once complete and accepted by the ingest.

    A dropped connection resumes at `received_bytes`; an upload left unfinished never becomes a dataset
    (and `reconstruction.services.uploads_purge_stale` removes it, daily through beat)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    received_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(received_bytes__gte=0, received_bytes__lte=models.F("size_bytes")),
                name="upload_received_within_size",
            )
        ]

    def __str__(self) -> str:
        return f"upload of {self.filename} ({self.received_bytes}/{self.size_bytes} bytes)"

    @property
    def complete(self) -> bool:
        return self.received_bytes == self.size_bytes

    @property
    def storage_name(self) -> str:
        return f"reconstruction/uploads/{self.id}.part"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ReconstructionJob(models.Model):
    """One reconstruction of a dataset with one method and set of parameters."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="reconstruction_jobs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="jobs")
    method = models.CharField(max_length=20)
    parameters = models.JSONField(default=dict, help_text="Engine parameters as given (defaults filled in)")
    # sha256 of the dataset's checksum, the method, the parameters and the engine version: the same
    # request twice returns the existing job.
    parameters_key = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=40)
    state = models.CharField(max_length=12, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    slab_count = models.PositiveIntegerField(default=1)
    # Sent to the broker? A job asked for while the broker is down stays unsent until it is back.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lab", "state"]), models.Index(fields=["state", "dispatched_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "parameters_key"],
                condition=Q(state__in=["queued", "running", "succeeded"]),
                name="job_same_request_once",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_percent"),
            models.CheckConstraint(condition=Q(slab_count__gte=1), name="job_has_slabs"),
            models.CheckConstraint(condition=~Q(state="failed") | ~Q(error=""), name="job_failure_has_a_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.method} job #{self.pk} of {self.dataset.name}"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_JOB_STATES

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobTransition(models.Model):
    """Audit of a job's state changes."""

    job = models.ForeignKey(ReconstructionJob, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=12)
    to_state = models.CharField(max_length=12)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"job {self.job_id}: {self.from_state} → {self.to_state}"


class SlabState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class SlabPart(models.TextChoices):
    VOLUME = "volume", "Volume"
    # The resolution's two halves: the even and the odd tilts over a central band of rows, run as slabs of their
    # own so that they spread over the workers with the volume's slabs instead of after them.
    EVEN = "even", "Even tilts (FSC)"
    ODD = "odd", "Odd tilts (FSC)"


class JobSlab(models.Model):
    """Rows [start, stop) of a job's volume (or of one FSC half), reconstructed by one Celery task on any worker."""

    job = models.ForeignKey(ReconstructionJob, on_delete=models.CASCADE, related_name="slabs")
    index = models.PositiveIntegerField()
    part = models.CharField(max_length=6, choices=SlabPart.choices, default=SlabPart.VOLUME)
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=SlabState.choices, default=SlabState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    result = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="slab_index_once"),
            models.CheckConstraint(condition=Q(stop__gt=models.F("start")), name="slab_not_empty"),
        ]

    def __str__(self) -> str:
        return f"slab {self.index} of job {self.job_id}"


class ReconstructionWorker(models.Model):
    """A Celery worker that said it is ready (and not yet that it stopped): how many processes can take slabs,
    so a job is cut into as many slabs as there are processes to run them (bigger slabs run faster per slice)."""

    name = models.CharField(max_length=200, unique=True)
    processes = models.PositiveSmallIntegerField(default=1)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.processes} process(es))"


class Volume(models.Model):
    """The result of a succeeded job: an MRC file in linear absorption coefficient (µm⁻¹)."""

    job = models.OneToOneField(ReconstructionJob, on_delete=models.PROTECT, related_name="volume")
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="volumes")
    file = models.FileField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    depth = models.PositiveIntegerField(help_text="slices along the tilt axis (rows)")
    thickness = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    voxel_size_nm = models.FloatField()
    units = models.CharField(max_length=20, default="µm⁻¹")
    # False where the method's values are not absolute (the page says so).
    absolute = models.BooleanField(default=True)
    value_min = models.FloatField()
    value_max = models.FloatField()
    value_mean = models.FloatField()
    histogram = models.JSONField(default=dict, help_text="{edges: [...], counts: [...]} of the LAC values")
    fsc = models.JSONField(default=dict, help_text="Even/odd Fourier shell correlation: {frequency_per_nm, fsc}")
    resolution_nm = models.FloatField(null=True, blank=True, help_text="FSC 0.143 crossing of the even/odd halves")
    previews = models.JSONField(default=dict, help_text="Storage names of the orthoslice previews by plane")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(voxel_size_nm__gt=0), name="volume_voxel_size_positive")]

    def __str__(self) -> str:
        return f"Volume of job #{self.job_id}"

"""Facilities, beamlines, proposals, sessions, quality policies (the gate), sample sheets, shipments."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from grids.models import Grid
from lims.models import Lab


def new_token() -> str:
    """An unguessable URL token (256 bits) for calendar subscriptions."""
    return secrets.token_urlsafe(32)


class Facility(models.Model):
    name = models.CharField(max_length=200, unique=True)
    short_name = models.CharField(max_length=40, unique=True, help_text="e.g. HZB, ALBA, Diamond")
    city = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=120, blank=True)
    website = models.URLField(blank=True)

    class Meta:
        ordering = ["short_name"]
        verbose_name_plural = "facilities"

    def __str__(self) -> str:
        return self.short_name


class Beamline(models.Model):
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="beamlines")
    name = models.CharField(max_length=120, help_text="e.g. U41 TXM")
    code = models.SlugField(max_length=40, unique=True, help_text="e.g. hzb-u41-txm")
    capacity = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="Grids the cryo-holder system takes in one session",
    )
    shift_hours = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(24)], help_text="Length of one shift (h)"
    )
    photon_energy_ev = models.FloatField(null=True, blank=True, help_text="Typical photon energy (eV)")
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["facility__short_name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["facility", "name"], name="beamline_unique_name"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="beamline_capacity_positive"),
            models.CheckConstraint(condition=Q(shift_hours__gte=1, shift_hours__lte=24), name="beamline_shift_hours"),
        ]

    def __str__(self) -> str:
        return f"{self.facility.short_name} {self.name}"


class FacilityStaffAssignment(models.Model):
    """Which facility a person staffs. Only users who also hold the lims.FacilityStaff role count."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="facility_assignments")
    facility = models.ForeignKey(Facility, on_delete=models.CASCADE, related_name="staff_assignments")
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "facility"], name="staffassignment_unique")]

    def __str__(self) -> str:
        return f"{self.user} at {self.facility}"


class Proposal(models.Model):
    """Beamtime granted to a lab by a facility: a number of shifts within a validity window."""

    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="proposals")
    number = models.CharField(max_length=60, help_text="The facility's proposal number")
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="proposals")
    principal_investigator = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    shifts_allocated = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1000)])
    valid_from = models.DateField()
    valid_until = models.DateField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-valid_from", "number"]
        constraints = [
            models.UniqueConstraint(fields=["facility", "number"], name="proposal_unique_number"),
            models.CheckConstraint(condition=Q(valid_until__gte=F("valid_from")), name="proposal_validity_ordered"),
            models.CheckConstraint(condition=Q(shifts_allocated__gte=1), name="proposal_shifts_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.facility.short_name} {self.number}"


class SessionStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    CONFIRMED = "confirmed", "Confirmed"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


class BeamtimeSession(models.Model):
    """A block of beamtime on one beamline for one proposal. Sessions on a beamline never overlap."""

    beamline = models.ForeignKey(Beamline, on_delete=models.PROTECT, related_name="sessions")
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="sessions")
    # The proposal's lab, kept on the row so that scoping is one join-free filter.
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="beamtime_sessions")
    start = models.DateTimeField()
    end = models.DateTimeField()
    shifts = models.PositiveSmallIntegerField(help_text="Shifts this session uses (its length in beamline shifts)")
    status = models.CharField(max_length=12, choices=SessionStatus.choices, default=SessionStatus.PLANNED)
    local_contact = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    freeze_at = models.DateTimeField(help_text="After this, only facility staff change the sample sheet")
    # Facility staff may schedule beyond the proposal's allocation; who, when and why is recorded.
    shift_override_reason = models.TextField(blank=True)
    shift_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    shift_override_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="session_end_after_start"),
            models.CheckConstraint(condition=Q(status__in=SessionStatus.values), name="session_status_valid"),
            models.CheckConstraint(condition=Q(freeze_at__lte=F("end")), name="session_freeze_before_end"),
            models.CheckConstraint(condition=Q(shifts__gte=1), name="session_shifts_positive"),
        ]
        indexes = [models.Index(fields=["beamline", "start"]), models.Index(fields=["lab", "start"])]

    def __str__(self) -> str:
        return f"{self.beamline} {self.start:%Y-%m-%d %H:%M} ({self.proposal.number})"


class SessionTransition(models.Model):
    """Audit of a session's status: one row per change, never edited."""

    session = models.ForeignKey(BeamtimeSession, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=12, choices=SessionStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=SessionStatus.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"session {self.session_id}: {self.from_status or '∅'} → {self.to_status}"


class Metric(models.TextChoices):
    """What a gate rule can test. Values come from characterization (see beamtime.quality)."""

    PRE_CHECK = "pre_vitrification_check", "Pre-vitrification check exists"
    POST_CHECK = "post_vitrification_check", "Post-vitrification check exists"
    ICE_QUALITY_CLASS = "ice_quality_class", "Ice quality class (1 best)"
    CELL_INTEGRITY = "cell_integrity", "Cell integrity score"
    GRID_INTEGRITY = "grid_integrity", "Grid integrity score"
    INTACT_FRACTION = "intact_fraction", "Fraction of intact squares"
    SQUARES_FOUND = "squares_found", "Squares found on the atlas"
    CONTAMINATION_SPOTS = "contamination_spots", "Contamination spots"
    FOCUS = "focus", "Focus (variance of the Laplacian)"
    COVERAGE_FRACTION = "coverage_fraction", "Cell coverage fraction"
    SATURATED_FRACTION = "saturated_fraction", "Saturated pixel fraction"
    TARGET_COUNT = "target_count", "Number of targets"
    QC_ACCEPTED = "qc_accepted", "QC decision is accepted"


class Operator(models.TextChoices):
    GE = "ge", "≥"
    LE = "le", "≤"
    GT = "gt", ">"
    LT = "lt", "<"
    EQ = "eq", "="
    NE = "ne", "≠"


class QualityPolicy(models.Model):
    """The gate of one beamline: every rule must pass for a grid to join a sample sheet."""

    beamline = models.OneToOneField(Beamline, on_delete=models.CASCADE, related_name="quality_policy")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "quality policies"

    def __str__(self) -> str:
        return self.name


class QualityRule(models.Model):
    policy = models.ForeignKey(QualityPolicy, on_delete=models.CASCADE, related_name="rules")
    metric = models.CharField(max_length=40, choices=Metric.choices)
    operator = models.CharField(max_length=2, choices=Operator.choices)
    threshold = models.FloatField()
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["policy", "order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(metric__in=Metric.values), name="qualityrule_metric_valid"),
            models.CheckConstraint(condition=Q(operator__in=Operator.values), name="qualityrule_operator_valid"),
        ]

    def __str__(self) -> str:
        return f"{Metric(self.metric).label} {Operator(self.operator).label} {self.threshold:g}"


class SampleSheetEntry(models.Model):
    """A grid on a session's sample sheet, in one position of the beamline's cryo-holder."""

    session = models.ForeignKey(BeamtimeSession, on_delete=models.PROTECT, related_name="entries")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="sample_sheet_entries")
    # The grid's dashboard summary, joined on grid_id without passing through the grid (no column).
    summary = models.ForeignObject(
        "characterization.GridSummary", on_delete=models.DO_NOTHING, from_fields=["grid"], to_fields=["grid"], null=True, serialize=False,
        related_name="+",
    )  # fmt: skip
    position = models.PositiveSmallIntegerField(help_text="Holder position, 1…capacity")
    grid_state_before = models.CharField(max_length=20, blank=True)
    gate_passed = models.BooleanField()
    # What the gate said when the grid was added: [{metric, operator, threshold, value, passed}, …].
    gate_evaluation = models.JSONField(default=list)
    override_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["summary"])

    class Meta:
        ordering = ["session", "position"]
        verbose_name_plural = "sample sheet entries"
        constraints = [
            models.UniqueConstraint(fields=["session", "grid"], name="sheet_grid_once"),
            models.UniqueConstraint(fields=["session", "position"], name="sheet_position_once"),
            models.CheckConstraint(condition=Q(position__gte=1), name="sheet_position_positive"),
            # A grid that failed the gate is on the sheet only with a written override.
            models.CheckConstraint(
                condition=Q(gate_passed=True) | (~Q(override_reason="") & Q(override_by__isnull=False)),
                name="sheet_failed_gate_needs_override",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grid} on {self.session} #{self.position}"


class ShipmentStatus(models.TextChoices):
    PREPARED = "prepared", "Prepared"
    SHIPPED = "shipped", "Shipped"
    RECEIVED = "received", "Received"
    RETURNED = "returned", "Returned"


class Shipment(models.Model):
    """A dewar of grids sent to a session's beamline."""

    session = models.ForeignKey(BeamtimeSession, on_delete=models.PROTECT, related_name="shipments")
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="shipments")
    dewar = models.CharField(max_length=120, help_text="Dewar name or barcode")
    courier = models.CharField(max_length=120, blank=True)
    tracking_number = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=ShipmentStatus.choices, default=ShipmentStatus.PREPARED)
    grids = models.ManyToManyField(Grid, through="ShipmentGrid", related_name="shipments")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ShipmentStatus.values), name="shipment_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Shipment {self.pk} ({self.dewar})"


class ShipmentGrid(models.Model):
    """A grid in a shipment with where it sits (box and slot as packed)."""

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="items")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="shipment_items")
    box_name = models.CharField(max_length=80, blank=True)
    box_barcode = models.CharField(max_length=40, blank=True)
    slot = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["shipment", "box_name", "slot", "grid__barcode"]
        constraints = [models.UniqueConstraint(fields=["shipment", "grid"], name="shipmentgrid_once")]

    def __str__(self) -> str:
        return f"{self.grid_id} in shipment {self.shipment_id}"


class ShipmentTransition(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=10, choices=ShipmentStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=ShipmentStatus.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"shipment {self.shipment_id}: {self.from_status or '∅'} → {self.to_status}"


class FeedKind(models.TextChoices):
    LAB = "lab", "Lab"
    BEAMLINE = "beamline", "Beamline"


class CalendarFeed(models.Model):
    """A secret-token iCalendar URL for a lab or a beamline (calendar programs cannot log in)."""

    kind = models.CharField(max_length=10, choices=FeedKind.choices)
    lab = models.OneToOneField(Lab, on_delete=models.CASCADE, null=True, blank=True, related_name="calendar_feed")
    beamline = models.OneToOneField(
        Beamline, on_delete=models.CASCADE, null=True, blank=True, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="lab") & Q(lab__isnull=False) & Q(beamline__isnull=True))
                | (Q(kind="beamline") & Q(beamline__isnull=False) & Q(lab__isnull=True)),
                name="calendarfeed_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} feed of {self.lab or self.beamline}"

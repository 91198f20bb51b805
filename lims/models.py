"""Labs, people and their roles."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    QC_REVIEWER = "qc_reviewer", "QC reviewer"
    LAB_ADMIN = "lab_admin", "Lab admin"


class Lab(models.Model):
    name = models.CharField(max_length=200, unique=True)
    code = models.CharField(
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{2,12}$", "Use 2–12 capital letters or digits, e.g. HZB1.")],
        help_text="Short code used in barcodes, e.g. HZB1.",
    )
    institution = models.CharField(max_length=200, blank=True)
    # Whether the operator who made a check may also accept or reject that grid.
    allow_self_review = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="labs")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lab", "user"], name="membership_one_per_lab_user"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]
        ordering = ["lab", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.lab} ({self.get_role_display()})"


class FacilityStaff(models.Model):
    """Beamline and facility staff: a role of its own, not a lab membership.

    Which facilities a person staffs is recorded by the beamtime app; this row says they are staff.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="facility_staff")
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "facility staff"

    def __str__(self) -> str:
        return f"{self.user} (facility staff)"


class ApiToken(models.Model):
    """A person's named API token. Only a SHA-256 hash of the key is stored; the key is shown once.

    A read-only token may only read (GET, HEAD, OPTIONS); a revoked token no longer authenticates.
    """

    PREFIX = "sxt_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80, help_text="What the token is for, e.g. 'nightly export script'")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=12, editable=False, help_text="The key's first characters, to tell it apart"
    )
    read_only = models.BooleanField(default=False, help_text="Only reads (GET); every write is refused")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], condition=models.Q(revoked_at__isnull=True), name="apitoken_active_name_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

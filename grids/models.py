"""Grid types, lots, grids, storage, cell lines and seeding."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from grids.lifecycle import GridState
from grids.ranges import SEEDING_RANGES
from lims.models import Lab
from lims.ranges import InRange, range_check


class GridMaterial(models.TextChoices):
    GOLD = "gold", "Gold"
    COPPER = "copper", "Copper"
    NICKEL = "nickel", "Nickel"
    MOLYBDENUM = "molybdenum", "Molybdenum"
    TITANIUM = "titanium", "Titanium"
    SILICON_NITRIDE = "silicon_nitride", "Silicon nitride"


class GridType(models.Model):
    """A kind of grid and its geometry, including the finder pattern that names its squares."""

    name = models.CharField(max_length=120, unique=True)
    vendor = models.CharField(max_length=120)
    material = models.CharField(max_length=20, choices=GridMaterial.choices)
    mesh = models.PositiveIntegerField(null=True, blank=True, help_text="Lines per inch; empty for a slotted grid.")
    support_film = models.CharField(max_length=120, blank=True, help_text="e.g. holey carbon, formvar, none")
    hole_pattern = models.CharField(max_length=60, blank=True, help_text="e.g. R2/2 (2 µm holes, 2 µm apart)")
    finder_rows = models.JSONField(default=list, help_text="Row labels top to bottom, e.g. A…J")
    finder_columns = models.JSONField(default=list, help_text="Column labels left to right, e.g. 1…10")
    square_pitch_um = models.FloatField(
        validators=[MinValueValidator(1.0)], help_text="Centre-to-centre distance of neighbouring squares (µm)"
    )
    diameter_mm = models.FloatField(default=3.05, validators=[MinValueValidator(1.0), MaxValueValidator(10.0)])
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(material__in=GridMaterial.values), name="gridtype_material_valid"),
            models.CheckConstraint(condition=Q(square_pitch_um__gt=0), name="gridtype_pitch_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def square_name(self, row: int, column: int) -> str:
        """The finder name of the square at (row, column), zero-based: (2, 3) → 'C4'."""
        if not (0 <= row < len(self.finder_rows) and 0 <= column < len(self.finder_columns)):
            raise ValueError(
                f"Square ({row}, {column}) is off the {self.name} finder pattern "
                f"({len(self.finder_rows)} rows × {len(self.finder_columns)} columns)."
            )
        return f"{self.finder_rows[row]}{self.finder_columns[column]}"

    def square_index(self, name: str) -> tuple[int, int]:
        """(row, column), zero-based, of a square named like 'C4'; ValueError names the valid labels."""
        match = re.fullmatch(r"\s*([A-Za-z]+)\s*([0-9]+)\s*", name or "")
        rows = [str(r).upper() for r in self.finder_rows]
        cols = [str(c) for c in self.finder_columns]
        if not match or match.group(1).upper() not in rows or match.group(2) not in cols:
            raise ValueError(
                f"{name!r} is not a square of {self.name}: rows are {rows[0]}–{rows[-1]}, "
                f"columns {cols[0]}–{cols[-1]} (e.g. {rows[0]}{cols[0]})."
            )
        return rows.index(match.group(1).upper()), cols.index(match.group(2))


class GridLot(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="grid_lots")
    grid_type = models.ForeignKey(GridType, on_delete=models.PROTECT, related_name="lots")
    vendor = models.CharField(max_length=120, blank=True)
    lot_number = models.CharField(max_length=80)
    received_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    quantity = models.PositiveIntegerField(help_text="Grids in the lot when received")
    quantity_left = models.PositiveIntegerField(help_text="Grids not yet registered")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "grid_type", "lot_number"], name="gridlot_unique_number"),
            models.CheckConstraint(condition=Q(quantity_left__lte=F("quantity")), name="gridlot_left_le_quantity"),
            models.CheckConstraint(condition=Q(quantity_left__gte=0), name="gridlot_left_nonnegative"),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True)
                | Q(received_on__isnull=True)
                | Q(expires_on__gte=F("received_on")),
                name="gridlot_expiry_after_receipt",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grid_type} lot {self.lot_number}"

    @property
    def grids_issued(self) -> int:
        return self.quantity - self.quantity_left


class StorageBox(models.Model):
    """A grid box (cryo storage); slot n holds at most one grid."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="storage_boxes")
    name = models.CharField(max_length=80)
    barcode = models.CharField(max_length=40, unique=True)
    capacity = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(1), MaxValueValidator(500)])
    location = models.CharField(max_length=200, blank=True, help_text="Dewar, cane, position")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["lab", "name"]
        verbose_name_plural = "storage boxes"
        constraints = [
            models.UniqueConstraint(fields=["lab", "name"], name="storagebox_unique_name"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="storagebox_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.barcode})"


class Grid(models.Model):
    barcode = models.CharField(max_length=40, unique=True)
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="grids")
    lot = models.ForeignKey(GridLot, on_delete=models.PROTECT, related_name="grids")
    state = models.CharField(max_length=20, choices=GridState.choices, default=GridState.REGISTERED)
    box = models.ForeignKey(StorageBox, on_delete=models.PROTECT, null=True, blank=True, related_name="grids")
    slot = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-registered_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=GridState.values), name="grid_state_valid"),
            models.UniqueConstraint(fields=["box", "slot"], name="grid_one_per_slot"),
            models.CheckConstraint(
                condition=(Q(box__isnull=True) & Q(slot__isnull=True)) | (Q(box__isnull=False) & Q(slot__gte=1)),
                name="grid_box_and_slot_together",
            ),
        ]
        indexes = [
            models.Index(fields=["lab", "state"]),
            # Lists read the newest grids first: a page is the first rows of this index, not a sort of them all.
            models.Index(fields=["-registered_at", "-id"], name="grids_grid_newest_first"),
        ]

    def __str__(self) -> str:
        return self.barcode

    @property
    def grid_type(self) -> GridType:
        return self.lot.grid_type

    @property
    def location_label(self) -> str:
        return f"{self.box.name} / slot {self.slot}" if self.box_id else "—"


class GridTransition(models.Model):
    """The audit trail of the lifecycle: one row per state change, never edited."""

    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="transitions")
    from_state = models.CharField(max_length=20, choices=GridState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=GridState.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)
    # What caused it, e.g. "seeding 12" or "plunge run 3", for the timeline.
    cause = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["grid", "at"]),
            # The dashboard's funnel counts the grids that entered each state in one pass of this index.
            models.Index(fields=["to_state", "grid"], name="grids_transition_state_grid"),
        ]

    def __str__(self) -> str:
        return f"{self.grid}: {self.from_state or '∅'} → {self.to_state}"


class BiosafetyLevel(models.IntegerChoices):
    BSL1 = 1, "BSL-1"
    BSL2 = 2, "BSL-2"
    BSL3 = 3, "BSL-3"
    BSL4 = 4, "BSL-4"


class CellLine(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="cell_lines")
    name = models.CharField(max_length=120)
    organism = models.CharField(max_length=120)
    biosafety_level = models.PositiveSmallIntegerField(choices=BiosafetyLevel.choices, default=BiosafetyLevel.BSL1)
    source = models.CharField(max_length=200, blank=True, help_text="e.g. ATCC CCL-2, or the lab it came from")
    notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "name"], name="cellline_unique_name"),
            models.CheckConstraint(condition=Q(biosafety_level__gte=1, biosafety_level__lte=4), name="cellline_bsl"),
        ]

    def __str__(self) -> str:
        return self.name


class DensityUnit(models.TextChoices):
    CELLS_PER_ML = "cells/mL", "cells/mL"
    CELLS_PER_CM2 = "cells/cm2", "cells/cm²"
    CELLS_PER_GRID = "cells/grid", "cells/grid"


class FiducialKind(models.TextChoices):
    NONE = "", "None"
    GOLD = "gold", "Gold nanoparticles"
    GOLD_BSA = "gold_bsa", "BSA-coated gold"
    GOLD_PROTEIN_A = "gold_protein_a", "Protein-A gold"
    POLYSTYRENE = "polystyrene", "Polystyrene beads"


def _range_validators(name: str) -> list:
    return [InRange(name)]


class Seeding(models.Model):
    """Cells put on one or many grids at once."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="seedings")
    cell_line = models.ForeignKey(CellLine, on_delete=models.PROTECT, related_name="seedings")
    grids = models.ManyToManyField(Grid, through="SeededGrid", related_name="seedings")
    passage = models.PositiveIntegerField(null=True, blank=True, validators=_range_validators("passage"))
    density = models.FloatField(null=True, blank=True, validators=_range_validators("density"))
    density_unit = models.CharField(max_length=12, choices=DensityUnit.choices, default=DensityUnit.CELLS_PER_ML)
    medium = models.CharField(max_length=200, blank=True, help_text="e.g. DMEM + 10% FBS")
    incubation_h = models.FloatField(null=True, blank=True, validators=_range_validators("incubation_h"))
    temperature_c = models.FloatField(default=37.0, validators=_range_validators("temperature_c"))
    co2_percent = models.FloatField(default=5.0, validators=_range_validators("co2_percent"))
    treatments = models.TextField(blank=True, help_text="Drugs, infections, starvation… with concentrations and times")
    fluorescent_labels = models.CharField(max_length=300, blank=True, help_text="e.g. MitoTracker Red, Hoechst")
    fiducial_kind = models.CharField(max_length=20, choices=FiducialKind.choices, blank=True, default="")
    fiducial_size_nm = models.FloatField(null=True, blank=True, validators=_range_validators("fiducial_size_nm"))
    fiducial_dilution = models.CharField(max_length=40, blank=True, help_text="e.g. 1:10")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    seeded_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-seeded_at", "-id"]
        constraints = [
            *(
                models.CheckConstraint(
                    condition=range_check(name, nullable=name not in ("temperature_c", "co2_percent")),
                    name=f"seeding_{name}_range",
                )
                for name in SEEDING_RANGES
            ),
            models.CheckConstraint(
                condition=Q(fiducial_kind="") | Q(fiducial_size_nm__isnull=False),
                name="seeding_fiducial_has_size",
            ),
        ]

    def __str__(self) -> str:
        return f"Seeding {self.pk} ({self.cell_line})"


class SeededGrid(models.Model):
    seeding = models.ForeignKey(Seeding, on_delete=models.PROTECT)
    # A grid carries cells from one seeding only.
    grid = models.OneToOneField(Grid, on_delete=models.PROTECT, related_name="seeded")

    def __str__(self) -> str:
        return f"{self.grid} in {self.seeding}"

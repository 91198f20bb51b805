"""Vitrification: instruments, plunge-freezing and high-pressure-freezing runs, and each grid's outcome.

Instrument models and cryogens are stored as the PDBx/mmCIF vocabulary strings
(`_em_vitrification.instrument`, `_em_vitrification.cryogen_name`,
`_em_high_pressure_freezing.instrument`), so a run maps onto a deposition without translation;
the display names are what people say at the bench ("Vitrobot Mark IV").
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from grids.models import Grid
from lims.models import Lab
from lims.ranges import InRange, range_check, range_message
from vitrification.ranges import RANGES


class InstrumentKind(models.TextChoices):
    PLUNGER = "plunger", "Plunge freezer"
    HPF = "hpf", "High-pressure freezer"


class InstrumentModel(models.TextChoices):
    # Plunge freezers: `_em_vitrification.instrument`.
    CRYOSOL_VITROJET = "CRYOSOL VITROJET", "CryoSol VitroJet"
    EMS_002 = "EMS-002 RAPID IMMERSION FREEZER", "EMS-002 rapid immersion freezer"
    VITROBOT_MARK_I = "FEI VITROBOT MARK I", "Vitrobot Mark I"
    VITROBOT_MARK_II = "FEI VITROBOT MARK II", "Vitrobot Mark II"
    VITROBOT_MARK_III = "FEI VITROBOT MARK III", "Vitrobot Mark III"
    VITROBOT_MARK_IV = "FEI VITROBOT MARK IV", "Vitrobot Mark IV"
    GATAN_CRYOPLUNGE_3 = "GATAN CRYOPLUNGE 3", "Gatan Cryoplunge 3"
    HOMEMADE_PLUNGER = "HOMEMADE PLUNGER", "Home-made (manual) plunger"
    LEICA_EM_CPC = "LEICA EM CPC", "Leica EM CPC"
    LEICA_EM_GP = "LEICA EM GP", "Leica EM GP"
    # Not (yet) in the mmCIF enumeration; kept as the instrument's own name, which the PDB accepts
    # as a free-text instrument when the list lacks it.
    LEICA_EM_GP2 = "LEICA EM GP2", "Leica EM GP2"
    LEICA_KF80 = "LEICA KF80", "Leica KF80"
    LEICA_PLUNGER = "LEICA PLUNGER", "Leica plunger"
    REICHERT_JUNG_PLUNGER = "REICHERT-JUNG PLUNGER", "Reichert-Jung plunger"
    SPOTITON = "SPOTITON", "Spotiton"
    SPT_CHAMELEON = "SPT LABTECH CHAMELEON", "SPT Labtech Chameleon"
    ZEISS_CRYOBOX = "ZEISS PLUNGE FREEZER CRYOBOX", "Zeiss plunge freezer Cryobox"
    # High-pressure freezers: `_em_high_pressure_freezing.instrument`.
    BALTEC_HPM_010 = "BAL-TEC HPM 010", "Bal-Tec HPM 010"
    LEICA_EM_HPM100 = "LEICA EM HPM100", "Leica EM HPM100"
    LEICA_EM_PACT = "LEICA EM PACT", "Leica EM PACT"
    LEICA_EM_PACT2 = "LEICA EM PACT2", "Leica EM PACT2"
    LEICA_EM_ICE = "LEICA EM ICE", "Leica EM ICE"
    WOHLWEND_COMPACT_03 = "WOHLWEND COMPACT 03", "Wohlwend Compact 03"
    OTHER = "OTHER", "Other"


M = InstrumentModel
HPF_MODELS: frozenset[str] = frozenset(
    {M.BALTEC_HPM_010, M.LEICA_EM_HPM100, M.LEICA_EM_PACT, M.LEICA_EM_PACT2, M.LEICA_EM_ICE, M.WOHLWEND_COMPACT_03}
)
PLUNGER_MODELS: frozenset[str] = frozenset(set(M.values) - HPF_MODELS - {M.OTHER})
# Which models each kind of instrument may be; OTHER fits both.
MODELS_BY_KIND: dict[str, frozenset[str]] = {
    InstrumentKind.PLUNGER: PLUNGER_MODELS | {M.OTHER},
    InstrumentKind.HPF: HPF_MODELS | {M.OTHER},
}


class Cryogen(models.TextChoices):
    """`_em_vitrification.cryogen_name`."""

    ETHANE = "ETHANE", "Ethane"
    ETHANE_PROPANE = "ETHANE-PROPANE", "Ethane–propane"
    NITROGEN = "NITROGEN", "Nitrogen"
    HELIUM = "HELIUM", "Helium"
    METHANE = "METHANE", "Methane"
    PROPANE = "PROPANE", "Propane"
    FREON_12 = "FREON 12", "Freon 12"
    FREON_22 = "FREON 22", "Freon 22"
    OTHER = "OTHER", "Other"


class BlotSide(models.TextChoices):
    FRONT = "front", "Front"
    BACK = "back", "Back"
    BOTH = "both", "Both sides"
    NONE = "none", "No blotting"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


def _ranged(field_class, name: str, *, null: bool = True, **kwargs):
    rng = RANGES[name]
    help_text = kwargs.pop("help_text", "")
    allowed = f"{rng.low:g}–{rng.high:g}{(' ' + rng.unit) if rng.unit else ''}"
    return field_class(
        null=null,
        blank=null,
        validators=[InRange(name)],
        help_text=f"{help_text} ({allowed})" if help_text else allowed,
        **kwargs,
    )


def _range_constraint(prefix: str, name: str, *, nullable: bool = True) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=range_check(name, nullable=nullable),
        name=f"{prefix}_{name}_range",
        violation_error_message=range_message(name),
    )


class Instrument(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="instruments")
    name = models.CharField(max_length=120, help_text="What the lab calls it, e.g. 'Vitrobot 2 (room 1.04)'")
    kind = models.CharField(max_length=10, choices=InstrumentKind.choices)
    model = models.CharField(
        max_length=40, choices=InstrumentModel.choices, help_text="Stored as the PDBx/mmCIF instrument name"
    )
    serial_number = models.CharField(max_length=80, blank=True)
    location = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True, help_text="Retired instruments stay for the record but take no new runs")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["lab", "name"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "name"], name="instrument_unique_name"),
            models.CheckConstraint(condition=Q(kind__in=InstrumentKind.values), name="instrument_kind_valid"),
            models.CheckConstraint(
                condition=(
                    Q(kind=InstrumentKind.PLUNGER, model__in=sorted(MODELS_BY_KIND[InstrumentKind.PLUNGER]))
                    | Q(kind=InstrumentKind.HPF, model__in=sorted(MODELS_BY_KIND[InstrumentKind.HPF]))
                ),
                name="instrument_model_fits_kind",
                violation_error_message="The instrument model does not fit its kind.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_model_display()})"

    @property
    def in_mmcif_vocabulary(self) -> bool:
        return self.model not in {M.LEICA_EM_GP2, M.LEICA_EM_ICE, M.WOHLWEND_COMPACT_03}


class VitrificationRun(models.Model):
    """What plunge and HPF runs share: where, with what, by whom, when."""

    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="+")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    performed_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    kind: str = ""  # the instrument kind the run needs
    label: str = ""  # "plunge run", used as the cause of grid transitions
    a_label: str = ""

    class Meta:
        abstract = True
        ordering = ["-performed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.label.capitalize()} {self.pk}"

    @property
    def cause(self) -> str:
        return f"{self.label} {self.pk}"

    def outcome_counts(self) -> tuple[int, int]:
        """(ok, failed), from the prefetched outcomes when present."""
        outcomes = list(self.outcomes.all())
        failed = sum(1 for o in outcomes if o.outcome == Outcome.FAILED)
        return len(outcomes) - failed, failed


class PlungeRun(VitrificationRun):
    """Plunge freezing of one or many grids with one set of parameters."""

    blot_time_s = _ranged(models.FloatField, "blot_time_s")
    blot_force = _ranged(models.SmallIntegerField, "blot_force", help_text="Vitrobot scale")
    blot_side = models.CharField(max_length=5, choices=BlotSide.choices, default=BlotSide.FRONT)
    humidity_percent = _ranged(models.FloatField, "humidity_percent", help_text="Relative humidity in the chamber")
    chamber_temperature_c = _ranged(models.FloatField, "chamber_temperature_c")
    wait_time_s = _ranged(models.FloatField, "wait_time_s", help_text="Before blotting")
    sample_volume_ul = _ranged(models.FloatField, "sample_volume_ul", help_text="Applied per grid")
    cryogen = models.CharField(max_length=20, choices=Cryogen.choices, default=Cryogen.ETHANE)
    history = HistoricalRecords()

    kind = InstrumentKind.PLUNGER
    label = "plunge run"
    a_label = "a plunge run"

    class Meta(VitrificationRun.Meta):
        constraints = [
            models.CheckConstraint(condition=Q(cryogen__in=Cryogen.values), name="plungerun_cryogen_valid"),
            models.CheckConstraint(condition=Q(blot_side__in=BlotSide.values), name="plungerun_blot_side_valid"),
            *(
                _range_constraint("plungerun", name)
                for name in (
                    "blot_time_s",
                    "blot_force",
                    "humidity_percent",
                    "chamber_temperature_c",
                    "wait_time_s",
                    "sample_volume_ul",
                )
            ),
        ]

    def clean(self) -> None:
        if self.blot_side == BlotSide.NONE and self.blot_time_s:
            raise ValidationError(
                {"blot_time_s": "Blot time must be empty or 0 when there is no blotting (blot side: none)."}
            )

    def mmcif(self) -> dict:
        """The run as `_em_vitrification` items (temperatures in kelvin, as the dictionary has them)."""
        return {
            "instrument": self.instrument.model,
            "cryogen_name": self.cryogen,
            "humidity": self.humidity_percent,
            "chamber_temperature": None
            if self.chamber_temperature_c is None
            else round(self.chamber_temperature_c + 273.15, 2),
            "method": "plunge freezing",
            "details": _mmcif_details(self),
        }


class HPFRun(VitrificationRun):
    """High-pressure freezing of one or many carriers (grids) with one set of parameters."""

    pressure_bar = _ranged(models.FloatField, "pressure_bar", null=False, help_text="Freezing pressure")
    carrier_type = models.CharField(
        max_length=120, blank=True, help_text="e.g. type A/B aluminium planchette, sapphire disc, grid sandwich"
    )
    cavity_depth_um = _ranged(models.FloatField, "cavity_depth_um", help_text="Depth of the carrier's cavity")
    filler = models.CharField(
        max_length=200, blank=True, help_text="Filler or cryoprotectant, e.g. 20% BSA, 1-hexadecene, 20% dextran"
    )
    history = HistoricalRecords()

    kind = InstrumentKind.HPF
    label = "HPF run"
    a_label = "an HPF run"

    class Meta(VitrificationRun.Meta):
        verbose_name = "HPF run"
        constraints = [
            _range_constraint("hpfrun", "pressure_bar", nullable=False),
            _range_constraint("hpfrun", "cavity_depth_um"),
        ]

    def mmcif(self) -> dict:
        """The run as `_em_high_pressure_freezing` items."""
        return {"instrument": self.instrument.model, "details": _mmcif_details(self)}


def _mmcif_details(run: VitrificationRun) -> str:
    parts = []
    if isinstance(run, PlungeRun):
        if run.blot_side != BlotSide.NONE and run.blot_time_s is not None:
            parts.append(f"blotted {run.blot_time_s:g} s from the {run.get_blot_side_display().lower()}")
        if run.blot_force is not None:
            parts.append(f"blot force {run.blot_force}")
        if run.wait_time_s is not None:
            parts.append(f"wait {run.wait_time_s:g} s")
        if run.sample_volume_ul is not None:
            parts.append(f"{run.sample_volume_ul:g} uL applied")
    else:
        parts.append(f"{run.pressure_bar:g} bar")
        if run.carrier_type:
            parts.append(f"carrier {run.carrier_type}")
        if run.cavity_depth_um is not None:
            parts.append(f"cavity {run.cavity_depth_um:g} um")
        if run.filler:
            parts.append(f"filler {run.filler}")
    return "; ".join(parts)


class GridOutcome(models.Model):
    """One grid in one run: ok (now vitrified) or failed with the reason (the grid was discarded).

    A grid is vitrified once: the one-to-one on `grid` holds that in the database, across both kinds
    of run, and exactly one of `plunge_run` / `hpf_run` is set.
    """

    grid = models.OneToOneField(Grid, on_delete=models.PROTECT, related_name="vitrification_outcome")
    plunge_run = models.ForeignKey(PlungeRun, on_delete=models.PROTECT, null=True, blank=True, related_name="outcomes")
    hpf_run = models.ForeignKey(HPFRun, on_delete=models.PROTECT, null=True, blank=True, related_name="outcomes")
    outcome = models.CharField(max_length=6, choices=Outcome.choices, default=Outcome.OK)
    reason = models.TextField(blank=True, help_text="Why it failed (required when failed)")
    history = HistoricalRecords()

    class Meta:
        ordering = ["grid__barcode"]
        constraints = [
            models.CheckConstraint(condition=Q(outcome__in=Outcome.values), name="gridoutcome_outcome_valid"),
            models.CheckConstraint(
                condition=(Q(plunge_run__isnull=False) & Q(hpf_run__isnull=True))
                | (Q(plunge_run__isnull=True) & Q(hpf_run__isnull=False)),
                name="gridoutcome_one_run",
            ),
            models.CheckConstraint(
                condition=Q(outcome=Outcome.OK) | ~Q(reason=""),
                name="gridoutcome_failed_has_reason",
                violation_error_message="A failed grid needs a reason.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grid} in {self.run}: {self.outcome}"

    @property
    def run(self) -> VitrificationRun:
        return self.plunge_run if self.plunge_run_id else self.hpf_run

"""Bench forms: instruments and runs. Ranges, labels and help texts come from `ranges.RANGES`."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from grids import selectors as grid_selectors
from lims import permissions
from lims.forms import happened, parse_id
from lims.models import Lab
from lims.ranges import range_form_field
from lims.selectors import labs_of
from vitrification import selectors, services
from vitrification.models import (
    HPF_MODELS,
    PLUNGER_MODELS,
    BlotSide,
    Cryogen,
    InstrumentKind,
    InstrumentModel,
    Outcome,
)

LABELS = {
    "blot_time_s": "Blot time (s)",
    "blot_force": "Blot force",
    "humidity_percent": "Humidity (%)",
    "chamber_temperature_c": "Chamber temperature (°C)",
    "wait_time_s": "Wait time (s)",
    "sample_volume_ul": "Sample volume (µL)",
    "pressure_bar": "Pressure (bar)",
    "cavity_depth_um": "Cavity depth (µm)",
}
HELP = {
    "blot_force": "Vitrobot scale",
    "wait_time_s": "Before blotting",
    "sample_volume_ul": "Per grid",
    "pressure_bar": "HPF machines run at about 2100 bar",
}


def ranged_field(name: str, *, required: bool = False) -> forms.Field:
    """A number input limited to RANGES[name], in the browser (min/max/step) and on the server."""
    return range_form_field(name, label=LABELS[name], help_text=HELP.get(name, ""), required=required)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _model_choices(kind: str | None = None) -> list:
    groups = []
    if kind in (None, InstrumentKind.PLUNGER):
        groups.append(("Plunge freezers", [(m, InstrumentModel(m).label) for m in sorted(PLUNGER_MODELS)]))
    if kind in (None, InstrumentKind.HPF):
        groups.append(("High-pressure freezers", [(m, InstrumentModel(m).label) for m in sorted(HPF_MODELS)]))
    return [("", "—"), *groups, (InstrumentModel.OTHER.value, InstrumentModel.OTHER.label)]


class InstrumentForm(forms.Form):
    lab = forms.ModelChoiceField(queryset=Lab.objects.none())
    name = forms.CharField(max_length=120, help_text="What the lab calls it, e.g. 'Vitrobot 2 (room 1.04)'")
    kind = forms.ChoiceField(choices=InstrumentKind.choices, widget=forms.RadioSelect)
    model = forms.ChoiceField(choices=_model_choices(), help_text="Recorded as the PDBx/mmCIF instrument name")
    serial_number = forms.CharField(max_length=80, required=False)
    location = forms.CharField(max_length=200, required=False)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        labs = labs_of(user=user)
        self.fields["lab"].queryset = labs
        if len(labs) == 1:
            self.fields["lab"].initial = labs[0].pk


class RunForm(forms.Form):
    """Grids (with each one's outcome), instrument, who and when; subclasses add the parameters."""

    kind: str = ""
    param_names: tuple[str, ...] = ()

    instrument = forms.ModelChoiceField(queryset=None)
    grids = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Select at least one seeded grid.",
            "invalid_choice": "Grid %(value)s is not a seeded grid of your labs (any more); it cannot be vitrified.",
        },
    )
    operator = forms.ModelChoiceField(queryset=None, required=False, help_text="Defaults to you")
    performed_at = forms.DateTimeField(
        label="Performed at", widget=DateTimeInput(), required=False, validators=[happened("The run")]
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user, preselected=(), **kwargs):
        super().__init__(*args, **kwargs)
        candidates = list(selectors.grids_ready_for_vitrification(user=user).select_related("lot__grid_type", "box"))
        preselected_ids = []
        for value in preselected:
            if (pk := parse_id(value)) is not None:
                preselected_ids.append(pk)
        candidate_ids = {g.pk for g in candidates}
        # Preselected grids first, in the order given, then the other seeded grids by barcode.
        order = {pk: i for i, pk in enumerate(preselected_ids)}
        candidates.sort(key=lambda g: (order.get(g.pk, len(order)), g.barcode))
        self.candidates = candidates
        self.fields["grids"].queryset = selectors.grids_ready_for_vitrification(user=user)
        self.fields["grids"].initial = [pk for pk in preselected_ids if pk in candidate_ids]
        # Preselected grids of the user's labs that a run cannot take, so the page can say why.
        others = [pk for pk in preselected_ids if pk not in candidate_ids]
        self.unavailable = list(grid_selectors.grid_list(user=user).filter(pk__in=others)) if others else []

        instruments = selectors.instruments_for_run(user=user, kind=self.kind)
        self.fields["instrument"].queryset = instruments
        if len(instruments) == 1:
            self.fields["instrument"].initial = instruments[0].pk
        self.fields["operator"].queryset = (
            get_user_model()
            .objects.filter(memberships__lab__in=permissions.lab_ids(user))
            .distinct()
            .order_by("username")
        )
        self.fields["operator"].initial = user.pk
        self.fields["performed_at"].initial = timezone.localtime().replace(second=0, microsecond=0)

        # The bench repeats its settings: start from the user's last run of this kind.
        last = None if self.is_bound else selectors.last_run(user=user, kind=self.kind)
        if last is not None:
            for name in self.param_names:
                self.fields[name].initial = getattr(last, name)
            if last.instrument.active:
                self.fields["instrument"].initial = last.instrument_id
        self.prefilled_from = last

        for grid in candidates:
            self.fields[f"failed_{grid.pk}"] = forms.BooleanField(required=False, label="Failed")
            self.fields[f"reason_{grid.pk}"] = forms.CharField(
                required=False,
                label="Reason",
                max_length=500,
                widget=forms.TextInput(attrs={"placeholder": "why it failed"}),
            )

    # --- what the template shows ---

    def param_fields(self):
        return [self[name] for name in self.param_names]

    def general_fields(self):
        return [self[name] for name in ("instrument", "operator", "performed_at", "notes")]

    def grid_rows(self):
        if self.is_bound:
            selected = set(self.data.getlist("grids")) if hasattr(self.data, "getlist") else set()
        else:
            selected = {str(pk) for pk in self.fields["grids"].initial or []}
        return [
            {
                "grid": grid,
                "checked": str(grid.pk) in selected,
                "failed": self[f"failed_{grid.pk}"],
                "reason": self[f"reason_{grid.pk}"],
            }
            for grid in self.candidates
        ]

    # --- validation and what the service gets ---

    def clean(self):
        cleaned = super().clean()
        for grid in cleaned.get("grids") or []:
            if cleaned.get(f"failed_{grid.pk}") and not (cleaned.get(f"reason_{grid.pk}") or "").strip():
                self.add_error(f"reason_{grid.pk}", f"Say why {grid.barcode} failed.")
        return cleaned

    def outcomes(self) -> list[dict]:
        data = self.cleaned_data
        return [
            {"grid": grid.pk, "outcome": Outcome.FAILED, "reason": data[f"reason_{grid.pk}"].strip()}
            for grid in data["grids"]
            if data.get(f"failed_{grid.pk}")
        ]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "grids": list(data["grids"]),
            "instrument": data["instrument"],
            "operator": data.get("operator"),
            "performed_at": data.get("performed_at"),
            "notes": data.get("notes", ""),
            "outcomes": self.outcomes(),
        }
        kwargs.update({name: data.get(name) for name in self.param_names})
        return kwargs


class PlungeRunForm(RunForm):
    kind = InstrumentKind.PLUNGER
    # The run's parameters as the service knows them (notes have their own field in RunForm).
    param_names = tuple(name for name in services.PLUNGE_FIELDS if name != "notes")

    blot_time_s = ranged_field("blot_time_s")
    blot_force = ranged_field("blot_force")
    blot_side = forms.ChoiceField(choices=BlotSide.choices, initial=BlotSide.FRONT)
    humidity_percent = ranged_field("humidity_percent")
    chamber_temperature_c = ranged_field("chamber_temperature_c")
    wait_time_s = ranged_field("wait_time_s")
    sample_volume_ul = ranged_field("sample_volume_ul")
    cryogen = forms.ChoiceField(choices=Cryogen.choices, initial=Cryogen.ETHANE, help_text="PDBx/mmCIF cryogen name")


class HPFRunForm(RunForm):
    kind = InstrumentKind.HPF
    param_names = tuple(name for name in services.HPF_FIELDS if name != "notes")

    pressure_bar = ranged_field("pressure_bar", required=True)
    carrier_type = forms.CharField(
        max_length=120, required=False, help_text="e.g. type A/B planchette, sapphire disc, grid sandwich"
    )
    cavity_depth_um = ranged_field("cavity_depth_um")
    filler = forms.CharField(
        max_length=200, required=False, label="Filler / cryoprotectant", help_text="e.g. 20% BSA, 1-hexadecene"
    )

from __future__ import annotations

import datetime

from django import forms

from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridType, Seeding, StorageBox
from grids.ranges import SEEDING_RANGES
from lims import permissions
from lims.forms import happened
from lims.models import Lab
from lims.selectors import labs_of


class DateInput(forms.DateInput):
    input_type = "date"


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class GridLotForm(forms.Form):
    lab = forms.ModelChoiceField(queryset=Lab.objects.none())
    grid_type = forms.ModelChoiceField(queryset=GridType.objects.all())
    lot_number = forms.CharField(max_length=80)
    quantity = forms.IntegerField(min_value=1, max_value=100000, help_text="Grids in the box as received")
    vendor = forms.CharField(max_length=120, required=False, help_text="Defaults to the grid type's vendor")
    received_on = forms.DateField(required=False, widget=DateInput, validators=[happened("The day the lot arrived")])
    expires_on = forms.DateField(required=False, widget=DateInput)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].queryset = labs_of(user=user)
        if self.fields["lab"].queryset.count() == 1:
            self.fields["lab"].initial = self.fields["lab"].queryset.first()


class RegisterGridsForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=1000, initial=10, label="Number of grids")
    box = forms.ModelChoiceField(queryset=StorageBox.objects.none(), required=False, empty_label="Not stored yet")

    def __init__(self, *args, lot, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["box"].queryset = StorageBox.objects.filter(lab=lot.lab_id)


class DiscardForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Why is the grid discarded?")


class NotesForm(forms.ModelForm):
    class Meta:
        model = Grid
        fields = ["notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class MoveForm(forms.Form):
    box = forms.ModelChoiceField(queryset=StorageBox.objects.none(), required=False, empty_label="Take out of storage")
    first_slot = forms.IntegerField(min_value=1, required=False, help_text="Leave empty to use the lowest free slots")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["box"].queryset = permissions.scope(StorageBox.objects.all(), user)


class StorageBoxForm(forms.Form):
    lab = forms.ModelChoiceField(queryset=Lab.objects.none())
    name = forms.CharField(max_length=80)
    capacity = forms.IntegerField(min_value=1, max_value=500, initial=4)
    location = forms.CharField(max_length=200, required=False, help_text="Dewar, cane, position")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].queryset = labs_of(user=user)


class CellLineForm(forms.ModelForm):
    lab = forms.ModelChoiceField(queryset=Lab.objects.none())

    class Meta:
        model = CellLine
        fields = ["lab", "name", "organism", "biosafety_level", "source", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].queryset = labs_of(user=user)

    def validate_unique(self):
        """Uniqueness is the service's to check (it says which name clashes)."""


class SeedingForm(forms.ModelForm):
    grids = forms.ModelMultipleChoiceField(
        queryset=Grid.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "tick-list"}),
        help_text="Registered grids of your labs: tick every grid that gets these cells",
    )
    cell_line = forms.ModelChoiceField(queryset=CellLine.objects.none())
    seeded_at = forms.DateTimeField(
        required=False, widget=DateTimeInput, help_text="Defaults to now", validators=[happened("The seeding")]
    )

    class Meta:
        model = Seeding
        fields = [
            "grids", "cell_line", "passage", "density", "density_unit", "medium", "incubation_h",
            "temperature_c", "co2_percent", "treatments", "fluorescent_labels", "fiducial_kind",
            "fiducial_size_nm", "fiducial_dilution", "seeded_at", "notes",
        ]  # fmt: skip
        labels = {
            "incubation_h": "Incubation (h)",
            "temperature_c": "Temperature (°C)",
            "co2_percent": "CO₂ (%)",
            "fiducial_size_nm": "Fiducial size (nm)",
        }
        widgets = {"treatments": forms.Textarea(attrs={"rows": 2}), "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grids"].queryset = (
            permissions.scope(Grid.objects.all(), user)
            .filter(state=GridState.REGISTERED)
            .select_related("lot__grid_type")
            .order_by("barcode")
        )
        self.fields["cell_line"].queryset = permissions.scope(CellLine.objects.all(), user)
        for name, rng in SEEDING_RANGES.items():
            if name in self.fields:
                self.fields[name].help_text = rng.allowed()
                self.fields[name].widget.attrs.update(min=f"{rng.low:g}", max=f"{rng.high:g}", step=f"{rng.step:g}")

    def _post_clean(self):
        """Model validation happens in the service, which names the field and the range."""


class DashboardFilterForm(forms.Form):
    """The QC dashboard's filters: dates here, the rest from the registered filters (grids.insights).

    A value that cannot be used is reported next to its field and left out; the other filters still apply.
    """

    # Days a lab's records can span: a range is clipped to them in the browser (min, max) and checked here, so a
    # typed 9999-12-31 is a message next to the field, not a date past the calendar's end in the query.
    FIRST_DAY, LAST_DAY = datetime.date(1970, 1, 1), datetime.date(2100, 12, 31)
    _DAYS = {"type": "date", "min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()}
    start = forms.DateField(required=False, label="Registered from", widget=forms.DateInput(attrs=_DAYS))
    end = forms.DateField(required=False, label="Registered until", widget=forms.DateInput(attrs=_DAYS))

    def __init__(self, *args, lab_ids: tuple[int, ...], **kwargs):
        from grids import insights

        super().__init__(*args, **kwargs)
        self.registered = insights.filters()
        for item in self.registered:
            self.fields[item.key] = forms.ChoiceField(
                required=False, label=item.label, choices=[("", "All")] + item.choices(lab_ids)
            )

    def _day(self, name: str) -> datetime.date | None:
        day = self.cleaned_data.get(name)
        if day and not self.FIRST_DAY <= day <= self.LAST_DAY:
            raise forms.ValidationError(
                f"Pick a day from {self.FIRST_DAY:%d %b %Y} to {self.LAST_DAY:%d %b %Y}: the form read {day.isoformat()}."
            )
        return day

    def clean_start(self):
        return self._day("start")

    def clean_end(self):
        return self._day("end")

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", f"The range ends ({end:%d %b %Y}) before it starts ({start:%d %b %Y}).")
        return data

    def usable(self) -> dict:
        """The values that passed their checks (fields with an error are dropped)."""
        self.is_valid()
        return {k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors and v}

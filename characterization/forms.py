from __future__ import annotations

import json

from django import forms
from django.utils import timezone

from characterization.models import (
    STAGE_SCORES,
    CellDensity,
    CellIntegrity,
    CheckStage,
    Decision,
    GridIntegrity,
    IceQualityClass,
    ImageKind,
    Modality,
    Morphology,
)
from lims.forms import happened

_SCORE_CHOICES = {
    "cell_density": CellDensity.choices,
    "morphology": Morphology.choices,
    "ice_quality_class": IceQualityClass.choices,
    "cell_integrity": CellIntegrity.choices,
    "grid_integrity": GridIntegrity.choices,
}
# Every scale says which end is best, and lists the best end first, so the first option is never the worst
# by accident (cell density has a target in the middle: it is listed from the target outwards).
_SCORE_LABELS = {
    "cell_density": "Cell density (3 is the target)",
    "morphology": "Morphology (5 best)",
    "ice_quality_class": "Ice quality class (1 best)",
    "cell_integrity": "Cell integrity (5 best)",
    "grid_integrity": "Grid integrity (5 best)",
}
_BEST_FIRST = {
    "cell_density": [3, 2, 4, 1, 5],
    "morphology": [5, 4, 3, 2, 1],
    "ice_quality_class": [1, 2, 3, 4],
    "cell_integrity": [5, 4, 3, 2, 1],
    "grid_integrity": [5, 4, 3, 2, 1],
}
_SCORE_CHOICES = {
    name: sorted(choices, key=lambda c, order=_BEST_FIRST[name]: order.index(c[0]))
    for name, choices in _SCORE_CHOICES.items()
}


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class CheckForm(forms.Form):
    """A check of one grid at one stage; only the stage's scores are shown."""

    stage = forms.ChoiceField(choices=CheckStage.choices, widget=forms.HiddenInput)
    microscope = forms.CharField(max_length=120, required=False, help_text="e.g. Zeiss Axio Observer, Leica Cryo CLEM")
    microscope_stage = forms.CharField(
        max_length=120, required=False, label="Microscope stage", help_text="e.g. Linkam CMS196 cryo stage"
    )
    objective = forms.CharField(max_length=120, required=False, help_text="e.g. 10x/0.3 air")
    checked_at = forms.DateTimeField(
        widget=DateTimeInput(format="%Y-%m-%dT%H:%M"), label="Checked at", validators=[happened("The check")]
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    operator = forms.ModelChoiceField(queryset=None, required=False, empty_label=None, help_text="Who looked")

    def __init__(self, *args, stage: str, lab=None, user=None, **kwargs):
        kwargs.setdefault("initial", {})
        if user is not None:
            kwargs["initial"].setdefault("operator", user.pk)
        kwargs["initial"].setdefault("stage", stage)
        kwargs["initial"].setdefault("checked_at", timezone.localtime().strftime("%Y-%m-%dT%H:%M"))
        super().__init__(*args, **kwargs)
        for name in STAGE_SCORES[stage]:
            self.fields[name] = forms.TypedChoiceField(
                choices=[("", "—"), *_SCORE_CHOICES[name]],
                coerce=int,
                empty_value=None,
                required=False,
                label=_SCORE_LABELS[name],
            )
        from django.contrib.auth import get_user_model

        members = (
            get_user_model().objects.filter(memberships__lab=lab)
            if lab is not None
            else get_user_model().objects.none()
        )
        self.fields["operator"].queryset = members.order_by("username")
        if lab is None:
            del self.fields["operator"]
        self.order_fields(
            ["operator", "microscope", "microscope_stage", "objective", "checked_at", *STAGE_SCORES[stage], "notes"]
        )


class UploadForm(forms.Form):
    """Fallback upload without JavaScript (the page uploads by drag and drop with progress)."""

    file = forms.FileField(
        label="Image file(s)", widget=forms.ClearableFileInput(attrs={"accept": ".tif,.tiff,.png,.jpg,.jpeg"})
    )
    kind = forms.ChoiceField(choices=ImageKind.choices, initial=ImageKind.CELLS)
    modality = forms.ChoiceField(choices=[("", "Guess from the image"), *Modality.choices], required=False)


class ImageMetadataForm(forms.Form):
    kind = forms.ChoiceField(choices=ImageKind.choices)
    modality = forms.ChoiceField(choices=Modality.choices)
    pixel_size_um = forms.FloatField(required=False, min_value=0.0001, max_value=1000, label="Pixel size (µm)")
    channel_names = forms.CharField(required=False, help_text="Comma-separated, one per channel, e.g. DAPI, GFP")
    objective = forms.CharField(max_length=120, required=False)

    def clean_channel_names(self):
        text = self.cleaned_data["channel_names"].strip()
        return [part.strip() for part in text.split(",")] if text else []


class TargetForm(forms.Form):
    x = forms.FloatField(
        min_value=0, widget=forms.NumberInput(attrs={"step": "any"}), help_text="pixels; click the image"
    )
    y = forms.FloatField(min_value=0, widget=forms.NumberInput(attrs={"step": "any"}))
    label = forms.CharField(max_length=80, required=False, help_text="Empty: T1, T2, …")
    priority = forms.TypedChoiceField(choices=[(1, "1 · highest"), (2, "2"), (3, "3 · lowest")], coerce=int, initial=2)


class CalibrationForm(forms.Form):
    landmarks = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text='JSON list, at least 3: [{"x": 120, "y": 80, "square": "C4"}, …] (click the image in landmark mode)',
    )

    def clean_landmarks(self):
        try:
            value = json.loads(self.cleaned_data["landmarks"])
        except ValueError:
            raise forms.ValidationError("Not valid JSON: use the list of landmarks the page fills in.") from None
        if not isinstance(value, list):
            raise forms.ValidationError("Give a list of landmarks.")
        return value


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    reasons = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Why (shown in the grid's timeline)")

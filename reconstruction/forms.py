"""Bench forms of reconstruction: add a dataset, decide on it, start a reconstruction."""

from __future__ import annotations

from django import forms

from lims.ranges import range_form_field
from reconstruction import selectors, services
from reconstruction.models import ProjectionValues


class SheetEntryChoice(forms.ModelChoiceField):
    def label_from_instance(self, entry) -> str:
        s = entry.session
        return f"{entry.grid.barcode} ({entry.grid.get_state_display().lower()}) · {s.beamline} · {s.start:%Y-%m-%d}"


class DatasetForm(forms.Form):
    entry = SheetEntryChoice(
        queryset=None,
        label="Grid and session",
        help_text="The grid this tilt series was taken of, on the session's sample sheet (shipped grids only).",
        empty_label="— choose the grid —",
    )
    file = forms.FileField(
        required=False,
        label="Tilt-series file",
        help_text="MRC stack (.mrc, .st, .ali), TIFF stack (.tif) or HDF5/NXtomo (.h5, .nxs). Large files upload in "
        "resumable chunks.",
    )
    upload = forms.UUIDField(required=False, widget=forms.HiddenInput)
    path = forms.CharField(
        required=False,
        max_length=1000,
        label="…or its path on the facility's storage",
        help_text="For files already at the beamline (under the data roots): nothing is copied.",
    )
    angles = forms.FileField(required=False, label="Tilt angles file (.tlt)", help_text="IMOD .tlt: one angle a line")
    angles_text = forms.CharField(
        required=False,
        max_length=100_000,
        label="…or type the tilt angles",
        help_text="from:to:step, e.g. -60:60:2, or a list of degrees. Not needed for NXtomo or an MRC with its .tlt.",
    )
    sidecar = forms.FileField(
        required=False,
        label="Focal-series sidecar (JSON)",
        help_text='Only for a focal series: {"focal_planes_um": [-1, 0, 1], "zone_plate": {...}}',
    )
    pixel_size_nm = range_form_field(
        "pixel_size_nm", label="Pixel size at the sample (nm)", help_text="if the file does not say it"
    )
    photon_energy_ev = range_form_field(
        "photon_energy_ev", label="Photon energy (eV)", help_text="water window: 284–543 eV"
    )
    exposure_s = range_form_field("exposure_s", label="Exposure per projection (s)")
    zone_plate_outer_zone_nm = range_form_field(
        "zone_plate_outer_zone_nm",
        label="Zone plate outermost zone (nm)",
        help_text="e.g. 25 or 40; enables depth-of-focus correction",
    )
    zone_plate_diameter_um = range_form_field("zone_plate_diameter_um", label="Zone plate diameter (µm)")
    projection_values = forms.ChoiceField(
        required=False,
        label="The numbers in the file are",
        choices=[("", "Detect from the file")] + list(ProjectionValues.choices),
    )
    target = forms.ModelChoiceField(
        queryset=None, required=False, label="Light-microscopy target",
        help_text="The cell marked on the post-vitrification check that this series shows (the correlative link).",
    )  # fmt: skip
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entry"].queryset = selectors.sheet_entries_for_datasets(user=user)
        self.fields["target"].queryset = selectors.targets_for_datasets(user=user).select_related(
            "image__lm_check__grid"
        )
        self.fields["target"].label_from_instance = lambda t: f"{t.label} on {t.image.lm_check.grid.barcode}"
        if not services.data_roots():
            del self.fields["path"]

    def clean(self):
        data = super().clean()
        given = [k for k in ("file", "upload", "path") if data.get(k)]
        if not given:
            raise forms.ValidationError("Choose the tilt-series file (or give its path on the facility's storage).")
        if len(given) > 1:
            raise forms.ValidationError("Give the file or its path, not both.")
        entry = data.get("entry")
        if entry is not None:
            data["session"], data["grid"] = entry.session, entry.grid
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("accept", "Accept and reconstruct"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    note = forms.CharField(required=False, max_length=2000, label="Note", help_text="Required to reject: say why")


class JobForm(forms.Form):
    """Start a reconstruction: the method (each explained in one sentence) and its parameters, with the defaults
    filled in; an empty field takes the default."""

    method = forms.ChoiceField(
        label="Method",
        widget=forms.RadioSelect,
        help_text="For a quick look: WBP (seconds). For the final volume: the regularised method, or SIRT.",
    )
    align = forms.BooleanField(
        required=False,
        initial=True,
        label="Correct drift between tilts",
        help_text="Shifts each projection by the drift found when the series was read (and uses the tilt axis it "
        "found); switch it off only for a series aligned elsewhere.",
    )
    iterations = range_form_field(
        "iterations",
        label="Iterations",
        help_text="SIRT, CGLS and the regularised method; empty: chosen from the data's noise. More iterations "
        "bring detail, and noise",
    )
    strength = range_form_field(
        "strength",
        label="Smoothing strength",
        help_text="Regularised methods only; empty: the weight the noise estimate gives (1, or 0.3 with the "
        "zone plate's blur). Larger smooths more (less noise, softer edges), smaller keeps more detail",
    )
    filter_name = forms.ChoiceField(
        required=False, label="WBP filter", help_text="WBP only; smoother filters trade detail for less noise"
    )
    thickness = range_form_field(
        "thickness",
        label="Volume thickness (voxels)",
        help_text="along the beam; the default is as wide as the projections",
    )
    axis_offset = range_form_field(
        "axis_offset",
        label="Tilt-axis offset (pixels)",
        help_text="where the tilt axis sits left (−) or right (+) of the centre; the default is the alignment's estimate",
    )
    slab_size = range_form_field(
        "slab_size",
        label="Slices per slab",
        help_text="work is split into slabs spread over the workers; never changes the result",
    )

    def __init__(self, *args, dataset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = [
            (m, f"{info.get('label', m.upper())} — {info.get('help', '')}".rstrip(" —"))
            for m, info in services.method_choices()
        ]
        self.fields["filter_name"].choices = [("", "ram-lak (default)")] + [(f, f) for f in services.wbp_filters()]
        if dataset is None:
            return
        self.fields["method"].initial = services.default_method(dataset)
        self.fields["thickness"].initial = dataset.columns
        self.fields["slab_size"].initial = services.default_slab_size(dataset)
        if dataset.focal_planes > 1:
            del self.fields["align"]
            del self.fields["axis_offset"]
            del self.fields["filter_name"]
        elif services.alignment_usable(dataset):
            self.fields["axis_offset"].initial = services.aligned_axis_offset(dataset)
        else:
            self.fields["align"].initial = False
            self.fields["axis_offset"].initial = 0

    def clean(self):
        data = super().clean()
        if data.get("method"):
            for key, message in services.parameters_not_for(data["method"], self.parameters()).items():
                self.add_error(key, message)
        return data

    def parameters(self) -> dict:
        """What was filled in; the service refuses, in words, a parameter that does not apply to the method."""
        keys = ("align", "iterations", "strength", "filter_name", "thickness", "axis_offset", "slab_size")
        return {
            k: self.cleaned_data[k] for k in keys if k in self.fields and self.cleaned_data.get(k) not in (None, "")
        }

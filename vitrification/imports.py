"""Bulk imports of plunge-freezing and high-pressure-freezing runs, registered with lims.imports.

One row per grid; rows with the same `run` key are one run (its instrument, operator, time and
parameters from the first of them), each grid with its own outcome. Through the services the forms use.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from grids import selectors as grid_selectors
from lims import permissions
from lims.imports import Column, ImportKind, import_kind_register
from vitrification import services
from vitrification.models import HPFRun, Instrument, InstrumentKind, Outcome, PlungeRun


class RunRowForm(forms.ModelForm):
    kind = InstrumentKind.PLUNGER
    run = forms.CharField(required=False, max_length=80)
    grid = forms.CharField(max_length=40)
    instrument = forms.CharField(max_length=120)
    operator = forms.CharField(required=False, max_length=150)
    performed_at = forms.DateTimeField(required=False)
    outcome = forms.ChoiceField(choices=Outcome.choices, required=False)
    reason = forms.CharField(required=False)

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        for name in self._meta.fields:
            self.fields[name].required = False

    def _post_clean(self):
        """Ranges are the service's to check (it names the field and the range)."""

    def clean_grid(self):
        barcode = self.cleaned_data["grid"]
        grid = grid_selectors.grid_by_barcode(user=self.user, barcode=barcode)
        if grid is None:
            raise forms.ValidationError(f"No grid {barcode!r} in your labs.")
        return grid

    def clean_instrument(self):
        name = self.cleaned_data["instrument"].strip()
        found = permissions.scope(Instrument.objects.filter(kind=self.kind, name__iexact=name), self.user).first()
        if found is None:
            raise forms.ValidationError(f"No {InstrumentKind(self.kind).label.lower()} called {name!r} in your labs.")
        return found

    def clean_operator(self):
        username = self.cleaned_data["operator"].strip()
        if not username:
            return None
        person = get_user_model().objects.filter(username=username).first()
        if person is None:
            raise forms.ValidationError(f"No person with username {username!r}.")
        return person

    def clean(self):
        data = super().clean()
        if data.get("outcome") == Outcome.FAILED and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the grid failed.")
        return data


class PlungeRunRowForm(RunRowForm):
    class Meta:
        model = PlungeRun
        fields = [f for f in services.PLUNGE_FIELDS]


class HPFRunRowForm(RunRowForm):
    kind = InstrumentKind.HPF

    class Meta:
        model = HPFRun
        fields = [f for f in services.HPF_FIELDS]


def _apply(record, names):
    def apply(rows, *, by) -> str:
        first = rows[0][1]
        params = {n: first[n] for n in names if first.get(n) not in (None, "")}
        outcomes = [
            {"grid": row["grid"], "outcome": row.get("outcome") or Outcome.OK, "reason": row.get("reason", "")}
            for _, row in rows
        ]
        run = record(
            grids=[row["grid"] for _, row in rows], instrument=first["instrument"], by=by,
            operator=first.get("operator"), performed_at=first.get("performed_at"), outcomes=outcomes, **params,
        )  # fmt: skip
        ok, failed = run.outcome_counts()
        return f"{run.label} {run.pk} on {run.instrument.name}: {ok} vitrified, {failed} failed."

    return apply


RUN_COLUMNS = (
    Column("run", "Optional key grouping rows (grids) into one run", "R1"),
    Column("grid", "Barcode of a seeded grid", "DEMO-G-000001", required=True),
    Column("instrument", "Instrument name (of your lab)", "Vitrobot 1", required=True),
    Column("operator", "Username of who froze (default: you)", ""),
    Column("performed_at", "When, YYYY-MM-DD HH:MM (default now)", "2026-05-04 14:00"),
    Column("outcome", "ok or failed (default ok)", "ok"),
    Column("reason", "Why the grid failed (required when failed)", ""),
)

PLUNGE_RUNS = ImportKind(
    slug="plunge-runs",
    label="Plunge-freezing runs",
    description="One row per grid; rows with the same `run` are one run. Grids move seeded → vitrified "
    "(ok) or → discarded (failed).",
    columns=RUN_COLUMNS
    + (
        Column("blot_time_s", "Blot time (s)", "6"),
        Column("blot_force", "Blot force", "0"),
        Column("blot_side", "front, back, both or none", "back"),
        Column("humidity_percent", "Chamber humidity (%)", "95"),
        Column("chamber_temperature_c", "Chamber temperature (°C)", "22"),
        Column("wait_time_s", "Wait before blotting (s)", "30"),
        Column("sample_volume_ul", "Sample applied (µL)", "3"),
        Column("cryogen", "ETHANE, ETHANE-PROPANE, PROPANE, NITROGEN, …", "ETHANE"),
        Column("notes", "Notes", ""),
    ),
    form=PlungeRunRowForm,
    apply=_apply(services.plunge_run_record, [f for f in services.PLUNGE_FIELDS]),
    group_by="run",
)

HPF_RUNS = ImportKind(
    slug="hpf-runs",
    label="High-pressure-freezing runs",
    description="One row per carrier (grid); rows with the same `run` are one run.",
    columns=RUN_COLUMNS
    + (
        Column("pressure_bar", "Freezing pressure (bar)", "2100", required=True),
        Column("carrier_type", "Carrier", "type A 100/200 µm"),
        Column("cavity_depth_um", "Cavity depth (µm)", "100"),
        Column("filler", "Filler / cryoprotectant", "20% BSA"),
        Column("notes", "Notes", ""),
    ),
    form=HPFRunRowForm,
    apply=_apply(services.hpf_run_record, [f for f in services.HPF_FIELDS]),
    group_by="run",
)


def register_imports() -> None:
    import_kind_register(PLUNGE_RUNS)
    import_kind_register(HPF_RUNS)

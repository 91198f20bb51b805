"""Bulk imports of grids (with their lots and storage boxes) and of seedings, registered with lims.imports.

Rows name things the way people do — a lab by its code, a grid type, lot, box or cell line by its name, a
grid by its barcode — and every row goes through the same services as the forms.
"""

from __future__ import annotations

from django import forms

from grids import selectors, services
from grids.models import CellLine, GridLot, GridType, Seeding, StorageBox
from lims.errors import DomainError
from lims.imports import Column, ImportKind, import_kind_register
from lims.models import Lab
from lims.selectors import labs_of


def _lab(user, code: str) -> Lab:
    lab = labs_of(user=user).filter(code__iexact=code.strip()).first()
    if lab is None:
        raise forms.ValidationError(f"You belong to no lab with code {code!r}.")
    return lab


class GridRowForm(forms.Form):
    lab = forms.CharField()
    lot_number = forms.CharField(max_length=80)
    grid_type = forms.CharField(required=False)
    lot_quantity = forms.IntegerField(required=False, min_value=1, max_value=100000)
    vendor = forms.CharField(required=False, max_length=120)
    received_on = forms.DateField(required=False)
    expires_on = forms.DateField(required=False)
    count = forms.IntegerField(min_value=1, max_value=services.MAX_REGISTER)
    box = forms.CharField(required=False, max_length=80)
    box_capacity = forms.IntegerField(required=False, min_value=1, max_value=1000)
    box_location = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_lab(self):
        return _lab(self.user, self.cleaned_data["lab"])

    def clean_grid_type(self):
        name = self.cleaned_data["grid_type"].strip()
        if not name:
            return None
        grid_type = GridType.objects.filter(name__iexact=name).first()
        if grid_type is None:
            names = ", ".join(GridType.objects.order_by("name").values_list("name", flat=True))
            raise forms.ValidationError(f"No grid type {name!r}; known types: {names}.")
        return grid_type


def apply_grids(rows, *, by) -> str:
    made = []
    for _, row in rows:
        lab = row["lab"]
        lot = GridLot.objects.filter(lab=lab, lot_number=row["lot_number"]).first()
        if lot is None:
            if row["grid_type"] is None:
                raise DomainError("grid_type: name the grid type of a new lot.", field="grid_type")
            if not row["lot_quantity"]:
                raise DomainError("lot_quantity: say how many grids the new lot holds.", field="lot_quantity")
            lot = services.grid_lot_create(
                lab=lab, grid_type=row["grid_type"], lot_number=row["lot_number"], quantity=row["lot_quantity"],
                vendor=row["vendor"], received_on=row["received_on"], expires_on=row["expires_on"], by=by,
            )  # fmt: skip
        box = None
        if row["box"]:
            box = StorageBox.objects.filter(lab=lab, name=row["box"]).first()
            if box is None:
                if not row["box_capacity"]:
                    raise DomainError("box_capacity: say how many grids the new box holds.", field="box_capacity")
                box = services.storage_box_create(
                    lab=lab, name=row["box"], capacity=row["box_capacity"], location=row["box_location"], by=by
                )
        made += services.grids_register(lot=lot, count=row["count"], box=box, by=by)
    return (
        f"Registered {len(made)} grid(s) from lot {rows[0][1]['lot_number']}: {made[0].barcode} … {made[-1].barcode}."
    )


SEEDING_PARAMETERS = [
    "passage", "density", "density_unit", "medium", "incubation_h", "temperature_c", "co2_percent", "treatments",
    "fluorescent_labels", "fiducial_kind", "fiducial_size_nm", "fiducial_dilution", "notes",
]  # fmt: skip


class SeedingRowForm(forms.ModelForm):
    seeding = forms.CharField(required=False, max_length=80)
    grid = forms.CharField(max_length=40)
    cell_line = forms.CharField(max_length=120)
    seeded_at = forms.DateTimeField(required=False)

    class Meta:
        model = Seeding
        fields = SEEDING_PARAMETERS

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        for name in SEEDING_PARAMETERS:
            self.fields[name].required = False

    def _post_clean(self):
        """Ranges and the grid's state are the service's to check (it names the field and the range)."""

    def clean(self):
        data = super().clean()
        barcode = data.get("grid")
        if barcode:
            grid = selectors.grid_by_barcode(user=self.user, barcode=barcode)
            if grid is None:
                self.add_error("grid", f"No grid {barcode!r} in your labs.")
            else:
                data["grid"] = grid
                name = data.get("cell_line")
                line = CellLine.objects.filter(lab=grid.lab_id, name__iexact=(name or "").strip()).first()
                if name and line is None:
                    self.add_error("cell_line", f"{grid.lab} has no cell line {name!r}; add it first.")
                data["cell_line"] = line
        return data


def apply_seedings(rows, *, by) -> str:
    first = rows[0][1]
    params = {name: first[name] for name in SEEDING_PARAMETERS if first.get(name) not in (None, "")}
    grids = [row["grid"] for _, row in rows]
    seeding = services.seeding_record(
        grids=grids, cell_line=first["cell_line"], by=by, seeded_at=first.get("seeded_at"), **params
    )
    return f"Seeded {', '.join(g.barcode for g in grids)} with {seeding.cell_line.name}."


GRIDS = ImportKind(
    slug="grids",
    label="Grids (with lots and storage)",
    description="Each row registers `count` grids from a lot (created when new) and stores them in a box "
    "(created when new; lowest free slots).",
    columns=(
        Column("lab", "Your lab's code", "DEMO", required=True),
        Column("lot_number", "The lot's number as printed on the box", "QF-2026-117", required=True),
        Column("grid_type", "Grid type name (new lots only)", "HZB-2"),
        Column("lot_quantity", "Grids in the lot as received (new lots only)", "100"),
        Column("vendor", "Vendor (new lots; default: the type's vendor)", ""),
        Column("received_on", "Date received, YYYY-MM-DD (new lots)", "2026-05-04"),
        Column("expires_on", "Expiry date, YYYY-MM-DD (new lots)", "2027-05-04"),
        Column("count", "How many grids to register from the lot", "10", required=True),
        Column("box", "Storage box name (created when new); empty: not stored", "Box A"),
        Column("box_capacity", "Slots of a new box", "100"),
        Column("box_location", "Where a new box is kept", "LN2 dewar 2, rack 3"),
    ),
    form=GridRowForm,
    apply=apply_grids,
)

SEEDINGS = ImportKind(
    slug="seedings",
    label="Seedings",
    description="Each row seeds one registered grid; rows with the same `seeding` key are one seeding "
    "(its parameters from the first of them).",
    columns=(
        Column("seeding", "Optional key grouping rows into one seeding", "S1"),
        Column("grid", "Barcode of a registered grid", "DEMO-G-000001", required=True),
        Column("cell_line", "Cell line name (of the grid's lab)", "HeLa", required=True),
        Column("seeded_at", "When, YYYY-MM-DD HH:MM (default now)", "2026-05-04 10:30"),
        Column("passage", "Passage number", "12"),
        Column("density", "Seeding density", "50000"),
        Column("density_unit", "cells/mL, cells/cm2 or cells/grid", "cells/mL"),
        Column("medium", "Medium", "DMEM + 10% FBS"),
        Column("incubation_h", "Incubation (h)", "24"),
        Column("temperature_c", "Temperature (°C)", "37"),
        Column("co2_percent", "CO₂ (%)", "5"),
        Column("treatments", "Drugs, infections… with concentrations and times", ""),
        Column("fluorescent_labels", "e.g. MitoTracker Red", ""),
        Column("fiducial_kind", "gold, gold_bsa, gold_protein_a, polystyrene or empty", ""),
        Column("fiducial_size_nm", "Fiducial size (nm)", ""),
        Column("fiducial_dilution", "e.g. 1:10", ""),
        Column("notes", "Notes", ""),
    ),
    form=SeedingRowForm,
    apply=apply_seedings,
    group_by="seeding",
)


def register_imports() -> None:
    import_kind_register(GRIDS)
    import_kind_register(SEEDINGS)

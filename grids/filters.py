"""List filters shared by the pages and the API: one FilterSet per list, so `/grids/?state=seeded` and
`/api/v1/grids/?state=seeded` select the same rows. Fields only scripts need are hidden on the pages."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridLot, GridType, Seeding, StorageBox
from lims.forms import DropdownChecklist, IdFilter

DATE = forms.DateInput(attrs={"type": "date"})
HIDDEN = forms.HiddenInput


class GridFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Barcode or text")
    # distinct=False: a grid's own column cannot repeat rows, and SELECT DISTINCT made PostgreSQL sort every
    # matching grid instead of reading the first page off the newest-first index (issue 10).
    state = django_filters.MultipleChoiceFilter(
        choices=GridState.choices, widget=DropdownChecklist(none_label="Any state"), label="State", distinct=False
    )
    grid_type = django_filters.ModelChoiceFilter(
        field_name="lot__grid_type", queryset=GridType.objects.all(), empty_label="Any type"
    )
    registered_after = django_filters.DateFilter(
        field_name="registered_at", lookup_expr="date__gte", label="From", widget=DATE
    )
    registered_before = django_filters.DateFilter(
        field_name="registered_at", lookup_expr="date__lte", label="To", widget=DATE
    )
    lot = IdFilter(widget=HIDDEN)
    lab = IdFilter(widget=HIDDEN)
    box = IdFilter(widget=HIDDEN)
    barcode = django_filters.CharFilter(lookup_expr="iexact", widget=HIDDEN)
    barcode_contains = django_filters.CharFilter(field_name="barcode", lookup_expr="icontains", widget=HIDDEN)

    class Meta:
        model = Grid
        fields = ["q", "state", "grid_type", "registered_after", "registered_before", "lot", "lab", "box", "barcode"]

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(barcode__icontains=value) | Q(notes__icontains=value) | Q(lot__lot_number__icontains=value)
        )


class GridLotFilter(django_filters.FilterSet):
    class Meta:
        model = GridLot
        fields = ["lab", "grid_type", "lot_number"]


class StorageBoxFilter(django_filters.FilterSet):
    class Meta:
        model = StorageBox
        fields = ["lab"]


class CellLineFilter(django_filters.FilterSet):
    class Meta:
        model = CellLine
        fields = ["lab", "organism", "biosafety_level"]


class SeedingFilter(django_filters.FilterSet):
    grid = IdFilter(field_name="grids")
    seeded_after = django_filters.DateFilter(field_name="seeded_at", lookup_expr="date__gte")
    seeded_before = django_filters.DateFilter(field_name="seeded_at", lookup_expr="date__lte")

    class Meta:
        model = Seeding
        fields = ["lab", "cell_line", "grid"]

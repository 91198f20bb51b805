"""List filters shared by the run pages and the API (one FilterSet per list)."""

from __future__ import annotations

import django_filters
from django import forms

from lims import permissions
from lims.forms import IdFilter
from vitrification.models import HPFRun, Instrument, InstrumentKind, PlungeRun

DATE = forms.DateInput(attrs={"type": "date"})


def _instruments(kind):
    def queryset(request):
        qs = Instrument.objects.filter(kind=kind).order_by("name")
        return permissions.scope(qs, request.user) if request is not None else qs.none()

    return queryset


class InstrumentFilter(django_filters.FilterSet):
    class Meta:
        model = Instrument
        fields = ["lab", "kind", "model", "active"]


class RunFilter(django_filters.FilterSet):
    barcode = django_filters.CharFilter(
        field_name="outcomes__grid__barcode", lookup_expr="iexact", label="Grid barcode"
    )
    performed_after = django_filters.DateFilter(
        field_name="performed_at", lookup_expr="date__gte", label="From", widget=DATE
    )
    performed_before = django_filters.DateFilter(
        field_name="performed_at", lookup_expr="date__lte", label="To", widget=DATE
    )
    grid = IdFilter(field_name="outcomes__grid", widget=forms.HiddenInput)
    lab = IdFilter(widget=forms.HiddenInput)
    operator = IdFilter(widget=forms.HiddenInput)


class PlungeRunFilter(RunFilter):
    instrument = django_filters.ModelChoiceFilter(queryset=_instruments(InstrumentKind.PLUNGER))

    class Meta:
        model = PlungeRun
        fields = ["barcode", "instrument", "performed_after", "performed_before", "cryogen", "blot_side"]


class HPFRunFilter(RunFilter):
    instrument = django_filters.ModelChoiceFilter(queryset=_instruments(InstrumentKind.HPF))

    class Meta:
        model = HPFRun
        fields = ["barcode", "instrument", "performed_after", "performed_before"]

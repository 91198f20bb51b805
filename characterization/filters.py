"""List filters shared by the check pages and the API (one FilterSet per list)."""

from __future__ import annotations

import django_filters
from django import forms

from characterization.models import Check, CheckImage, CheckStage, QCDecision, Target
from lims.forms import IdFilter


class CheckFilter(django_filters.FilterSet):
    stage = django_filters.ChoiceFilter(choices=CheckStage.choices, empty_label="Any stage")
    grid = IdFilter(widget=forms.HiddenInput)
    lab = IdFilter(widget=forms.HiddenInput)
    checked_after = django_filters.DateFilter(
        field_name="checked_at", lookup_expr="date__gte", widget=forms.HiddenInput
    )
    checked_before = django_filters.DateFilter(
        field_name="checked_at", lookup_expr="date__lte", widget=forms.HiddenInput
    )

    class Meta:
        model = Check
        fields = ["stage", "grid", "lab"]


class CheckImageFilter(django_filters.FilterSet):
    check = IdFilter(field_name="lm_check")
    grid = IdFilter(field_name="lm_check__grid")

    class Meta:
        model = CheckImage
        fields = ["check", "grid", "kind", "metrics_status"]


class TargetFilter(django_filters.FilterSet):
    check = IdFilter(field_name="image__lm_check")
    grid = IdFilter(field_name="image__lm_check__grid")

    class Meta:
        model = Target
        fields = ["image", "check", "grid", "priority"]


class QCDecisionFilter(django_filters.FilterSet):
    class Meta:
        model = QCDecision
        fields = ["grid", "decision", "lab"]

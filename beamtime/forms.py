"""Bench and scheduling forms of beamtime (validation of shape only; the services hold the rules)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from beamtime import selectors
from beamtime.models import Facility, Metric, Operator, SessionStatus, ShipmentStatus
from lims import permissions
from lims.models import Lab

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SessionForm(forms.Form):
    beamline = forms.ModelChoiceField(queryset=selectors.beamline_list().filter(active=True))
    proposal = forms.ModelChoiceField(queryset=None)
    start = forms.DateTimeField(widget=DATETIME)
    end = forms.DateTimeField(widget=DATETIME)
    freeze_at = forms.DateTimeField(
        widget=DATETIME, required=False, label="Sample sheet freezes at", help_text="Default: 48 h before the start"
    )
    local_contact = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(facility_staff__isnull=False), required=False
    )
    notes = forms.CharField(widget=forms.Textarea, required=False)
    override_reason = forms.CharField(
        required=False,
        label="Allocation override reason",
        help_text="Facility staff only: why this session may exceed the proposal's shifts",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["proposal"].queryset = selectors.proposal_list(user=user)


class ProposalForm(forms.Form):
    facility = forms.ModelChoiceField(queryset=Facility.objects.all())
    number = forms.CharField(max_length=60)
    lab = forms.ModelChoiceField(queryset=None)
    principal_investigator = forms.CharField(max_length=200)
    title = forms.CharField(max_length=300)
    shifts_allocated = forms.IntegerField(min_value=1, max_value=1000)
    valid_from = forms.DateField(widget=DATE)
    valid_until = forms.DateField(widget=DATE)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].queryset = permissions.scope(Lab.objects.all(), user, "pk")


class SheetAddForm(forms.Form):
    grid = forms.ModelChoiceField(
        queryset=None, help_text="Vitrified, accepted or rejected grids of the lab (scan or pick); the gate decides"
    )
    override_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Override reason (QC reviewers)",
        help_text="Only needed when the grid fails the gate",
    )

    def __init__(self, *args, session, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grid"].queryset = selectors.sheet_addable_grids(session=session, user=user)


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=SessionStatus.choices)
    reason = forms.CharField(required=False)


class ShipmentForm(forms.Form):
    dewar = forms.CharField(max_length=120, help_text="Dewar name or barcode")
    courier = forms.CharField(max_length=120, required=False)
    tracking_number = forms.CharField(max_length=120, required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ShipmentStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ShipmentStatus.choices)
    reason = forms.CharField(required=False)
    tracking_number = forms.CharField(required=False)


class RuleForm(forms.Form):
    metric = forms.ChoiceField(choices=Metric.choices)
    operator = forms.ChoiceField(choices=Operator.choices)
    threshold = forms.FloatField()


RuleFormSet = forms.formset_factory(RuleForm, extra=1, can_delete=True)


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

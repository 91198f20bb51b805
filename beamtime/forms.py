"""Bench and scheduling forms of beamtime (validation of shape only; the services hold the rules)."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from beamtime import selectors
from beamtime.models import Facility, Metric, Operator, SessionStatus, ShipmentStatus
from lims.selectors import labs_of

DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class FacilitySelect(forms.Select):
    """A select whose options carry their facility, so the page can offer only choices that agree
    (a proposal of the chosen beamline's facility)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-facility"] = str(
                getattr(instance, "facility_id", None) or getattr(instance.beamline, "facility_id", "")
            )
        return option


class SessionForm(forms.Form):
    beamline = forms.ModelChoiceField(
        queryset=selectors.beamline_list().filter(active=True),
        widget=FacilitySelect(attrs={"data-facility-source": ""}),
    )
    proposal = forms.ModelChoiceField(
        queryset=None,
        widget=FacilitySelect(attrs={"data-facility-filter": "beamline"}),
        help_text="Only proposals at the chosen beamline's facility are offered",
    )
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
        self.fields["proposal"].queryset = selectors.proposal_list(user=user).select_related("facility")
        self.fields["proposal"].label_from_instance = lambda p: f"{p.facility.short_name} {p.number} — {p.title}"

    def clean(self):
        """Every problem at once, each on its field, saying what was read."""
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        beamline, proposal = data.get("beamline"), data.get("proposal")
        if start and end and end <= start:
            self.add_error(
                "end",
                f"The session ends ({end:%d %b %Y %H:%M}) before or when it starts ({start:%d %b %Y %H:%M}).",
            )
        if start and start > timezone.now() + datetime.timedelta(days=3 * 365):
            self.add_error("start", f"The form read {start:%d %b %Y}, more than three years ahead. Check the year.")
        if beamline and proposal and proposal.facility_id != beamline.facility_id:
            self.add_error(
                "proposal",
                f"Proposal {proposal.number} was granted by {proposal.facility}, but {beamline} is at "
                f"{beamline.facility}: choose a proposal of {beamline.facility} or another beamline.",
            )
        freeze = data.get("freeze_at")
        if freeze and end and freeze > end:
            self.add_error("freeze_at", f"The sheet would freeze ({freeze:%d %b %Y %H:%M}) after the session ends.")
        return data


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
        self.fields["lab"].queryset = labs_of(user=user)


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

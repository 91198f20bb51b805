from django import forms

from lims.models import Role


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


def show_domain_error(form: forms.Form, error) -> None:
    """Put a service's refusal on the field it names, or above the form when it names none."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “nightly export script”")
    read_only = forms.BooleanField(required=False, initial=True, help_text="Only reads: every write is refused")

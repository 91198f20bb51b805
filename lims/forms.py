from django import forms

from lims.models import Role


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


def show_domain_error(form: forms.Form, error) -> None:
    """Put a service's refusal on the field it names, or above the form when it names none."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


def happened(what: str, *, years_back: int = 5, slack_minutes: int = 60):
    """A validator for the moment something already happened (a check, a seeding, a run): not in the
    future (beyond clock slack) and not implausibly long ago. The message says what was read."""
    import datetime

    from django.core.exceptions import ValidationError
    from django.utils import timezone

    def validate(value) -> None:
        if value is None:
            return
        now = timezone.now()
        if isinstance(value, datetime.datetime):
            shown = timezone.localtime(value).strftime("%d %b %Y %H:%M") if timezone.is_aware(value) else value
            late = value > now + datetime.timedelta(minutes=slack_minutes)
            early = value < now - datetime.timedelta(days=365 * years_back)
        else:
            shown = value.strftime("%d %b %Y")
            today = timezone.localdate()
            late = value > today
            early = value < today - datetime.timedelta(days=365 * years_back)
        if late:
            raise ValidationError(
                f"{what} cannot be in the future: the form read {shown}, and it is now "
                f"{timezone.localtime(now):%d %b %Y %H:%M}. Check the year and the month."
            )
        if early:
            raise ValidationError(f"{what} is more than {years_back} years ago: the form read {shown}. Check the year.")

    return validate

from django import forms

from lims.models import Role


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


# Ids are 64-bit database integers: a larger number in a URL can name no record (and would overflow
# the database driver), so it reads as no id at all.
MAX_ID = 2**63 - 1


def parse_id(value) -> int | None:
    """A record id from a query parameter, or None for text, zero, negatives and numbers beyond 64 bits."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


class IdField(forms.IntegerField):
    """An id in a filter form: text and out-of-range numbers are a form error, not a database error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def show_domain_error(form: forms.Form, error) -> None:
    """Put a service's refusal on the field it names, or above the form when it names none or a hidden one
    (a hidden field shows no errors)."""
    field = error.field if error.field in form.fields and not form.fields[error.field].widget.is_hidden else None
    form.add_error(field, error.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “nightly export script”")
    read_only = forms.BooleanField(required=False, initial=True, help_text="Only reads: every write is refused")


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


def _id_filter():
    import django_filters

    class IdFilter(django_filters.NumberFilter):
        """A record id in a list filter (page or API): text and numbers beyond 64 bits are a 400, never a
        database overflow."""

        field_class = IdField

    return IdFilter


IdFilter = _id_filter()


class DropdownChecklist(forms.CheckboxSelectMultiple):
    """Several choices as tick boxes folded under one line ("Any state" / "2 chosen: Seeded, Vitrified"):
    a tap on a tablet ticks one, with no modifier key, and the filter bar stays one line high."""

    template_name = "lims/widgets/dropdown_checklist.html"

    def __init__(self, attrs=None, choices=(), *, none_label: str = "Any") -> None:
        super().__init__(attrs, choices)
        self.none_label = none_label

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        chosen = {str(v) for v in (value or [])}
        names = [str(label) for key, label in self.choices if str(key) in chosen]
        context["widget"]["none_label"] = self.none_label
        context["widget"]["summary"] = (
            f"{len(names)} chosen: {', '.join(names)}" if len(names) > 1 else (names[0] if names else self.none_label)
        )
        return context

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
    """Put a service's refusal on the field it names, or above the form when it names none."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “nightly export script”")
    read_only = forms.BooleanField(required=False, initial=True, help_text="Only reads: every write is refused")

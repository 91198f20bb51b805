"""One range table per app, applied everywhere by lims.ranges: model, database, form and API agree."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from grids.forms import SeedingForm
from grids.models import Seeding
from lims.errors import DomainError
from lims.ranges import RANGES, define, range_api_field, range_form_field, validated
from tests.factories import CellLineFactory


def test_every_app_table_lands_in_the_one_registry():
    assert RANGES["humidity_percent"].describe() == "between 0 and 100 %"
    assert RANGES["temperature_c"].describe() == "between 4 and 45 °C"


def test_a_second_different_range_for_the_same_field_is_refused():
    with pytest.raises(ValueError, match="humidity_percent"):
        define({"humidity_percent": RANGES["humidity_percent"].__class__(0, 50, "%")})


def test_form_and_api_fields_refuse_the_same_value_with_the_same_message():
    form_field = range_form_field("blot_time_s")
    api_field = range_api_field("blot_time_s")
    assert form_field.widget.attrs["min"] == "0" and form_field.widget.attrs["max"] == "30"
    from django.core.exceptions import ValidationError
    from rest_framework.exceptions import ValidationError as APIValidationError

    with pytest.raises(ValidationError) as page:
        form_field.clean("31")
    with pytest.raises(APIValidationError) as api:
        api_field.run_validation(31)
    assert (
        page.value.messages
        == [str(m) for m in api.value.detail]
        == ["Blot time must be between 0 and 30 s (the value read was 31)."]
    )


def test_the_seeding_form_tells_the_browser_the_range(member):
    form = SeedingForm(user=member)
    attrs = form.fields["temperature_c"].widget.attrs
    assert (attrs["min"], attrs["max"]) == ("4", "45")


def test_validated_names_every_field_out_of_range_at_once(lab, member):
    seeding = Seeding(lab=lab, cell_line=CellLineFactory(lab=lab), operator=member, temperature_c=80, co2_percent=30)
    with pytest.raises(DomainError) as refused:
        validated(seeding, exclude=["seeded_at"])
    assert "Temperature must be between 4 and 45 °C (the value read was 80)." in refused.value.message
    assert "CO₂ must be between 0 and 20 % (the value read was 30)." in refused.value.message


@pytest.mark.django_db
def test_the_database_refuses_a_seeding_out_of_range_even_around_the_validators(lab, member):
    from django.utils import timezone

    with pytest.raises(IntegrityError), transaction.atomic():
        Seeding.objects.create(
            lab=lab, cell_line=CellLineFactory(lab=lab), operator=member, seeded_at=timezone.now(), incubation_h=1000
        )

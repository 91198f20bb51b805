"""The Django admin has every model, and every admin page opens for a superuser."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command

from tests.factories import UserFactory

APPS = ["lims", "grids", "vitrification"]


def _models():
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            if not model._meta.model_name.startswith("historical"):
                yield model


@pytest.mark.parametrize("model", list(_models()), ids=lambda m: m._meta.label)
def test_every_model_of_the_foundation_apps_is_in_the_admin(model):
    assert model in admin.site._registry, f"{model._meta.label} is missing from the Django admin"


def test_every_admin_page_opens_for_a_superuser_on_demo_data(client, db):
    call_command("load_demo", stdout=None)
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    for model in _models():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(base).status_code == 200, base
        assert client.get(base, {"q": "x"}).status_code == 200, base
        if admin.site._registry[model].has_add_permission(_request_for(client)):
            assert client.get(base + "add/").status_code == 200, base
        row = model.objects.first()
        if row is not None:
            assert client.get(f"{base}{row.pk}/change/").status_code == 200, base
            assert client.get(f"{base}{row.pk}/history/").status_code == 200, base


def test_the_admin_cannot_add_a_grid_or_a_seeded_grid_around_the_lifecycle(client, db):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get("/admin/grids/grid/add/").status_code == 403
    assert client.get("/admin/grids/seededgrid/add/").status_code == 403


def _request_for(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = UserFactory.build(is_superuser=True, is_staff=True, is_active=True)
    return request

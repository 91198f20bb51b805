import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from lims.models import Membership
from tests.factories import UserFactory


def test_a_lab_admin_adds_a_member_through_the_api(api_for, lab, lab_admin):
    newcomer = UserFactory()
    response = api_for(lab_admin).post(
        f"/api/v1/labs/{lab.pk}/members/", {"username": newcomer.username, "role": "qc_reviewer"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Membership.objects.get(lab=lab, user=newcomer).role == "qc_reviewer"


def test_a_plain_member_cannot_add_members(api, lab):
    newcomer = UserFactory()
    response = api.post(f"/api/v1/labs/{lab.pk}/members/", {"username": newcomer.username}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(user=newcomer).exists()


def test_another_labs_admin_sees_404_for_this_lab(api_for, lab, outsider):
    assert api_for(outsider).get(f"/api/v1/labs/{lab.pk}/").status_code == 404
    assert (
        api_for(outsider).post(f"/api/v1/labs/{lab.pk}/members/", {"username": "x"}, format="json").status_code == 404
    )


def test_adding_an_unknown_user_says_so(api_for, lab, lab_admin):
    response = api_for(lab_admin).post(f"/api/v1/labs/{lab.pk}/members/", {"username": "nobody"}, format="json")
    assert response.status_code == 400 and "nobody" in response.json()["detail"]


def test_the_last_lab_admin_cannot_be_demoted(api_for, lab, lab_admin):
    response = api_for(lab_admin).post(
        f"/api/v1/labs/{lab.pk}/members/", {"username": lab_admin.username, "role": "member"}, format="json"
    )
    assert response.status_code == 409


def test_a_superuser_may_add_members_to_any_lab(api_for, lab):
    boss = UserFactory(is_superuser=True, is_staff=True)
    newcomer = UserFactory()
    response = api_for(boss).post(f"/api/v1/labs/{lab.pk}/members/", {"username": newcomer.username}, format="json")
    assert response.status_code == 201


def test_every_page_needs_a_login(client, db):
    for url in ["/", "/grids/", "/grids/lots/", "/grids/seedings/new/", "/labs/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert client.get("/accounts/login/").status_code == 200


def test_the_lab_page_lets_an_admin_add_a_member(client, lab, lab_admin):
    newcomer = UserFactory()
    client.force_login(lab_admin)
    response = client.post(f"/labs/{lab.pk}/", {"username": newcomer.username, "role": "member"})
    assert response.status_code == 302
    assert Membership.objects.filter(lab=lab, user=newcomer).exists()


def test_load_demo_is_idempotent(db, capsys):
    from grids.models import Grid, GridLot

    call_command("load_demo")
    first = (
        get_user_model().objects.count(),
        Grid.objects.count(),
        GridLot.objects.get(lot_number="DEMO-2026-01").quantity_left,
    )
    call_command("load_demo")
    second = (
        get_user_model().objects.count(),
        Grid.objects.count(),
        GridLot.objects.get(lot_number="DEMO-2026-01").quantity_left,
    )
    assert first == second
    assert "admin /" in capsys.readouterr().out


def test_a_bad_boolean_setting_fails_loudly(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from lims.env import env_bool

    monkeypatch.setenv("LIMS_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="LIMS_X"):
        env_bool("LIMS_X", False)


def test_production_mode_passes_the_deploy_check(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {**env, "LIMS_PRODUCTION": "1", "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-value-0123456789",
           "ALLOWED_HOSTS": "lims.example.org", "LIMS_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_openapi_schema_lists_every_endpoint(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"] if response["Content-Type"].endswith("json") else response.content.decode()
    for endpoint in ["/api/v1/labs/", "/api/v1/grid-lots/{id}/register-grids/", "/api/v1/grids/{id}/discard/",
                     "/api/v1/seedings/", "/api/v1/plunge-runs/", "/api/v1/hpf-runs/", "/api/v1/instruments/"]:  # fmt: skip
        assert endpoint in paths, endpoint


def test_api_token_create_prints_a_key_the_api_accepts_once(member):
    from io import StringIO

    import pytest
    from django.core.management.base import CommandError
    from rest_framework.test import APIClient

    out = StringIO()
    call_command("api_token_create", member.username, "--name", "nightly export", "--read-only", stdout=out)
    key = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/labs/").status_code == 200
    assert client.post("/api/v1/labs/", {}).status_code == 403  # read-only
    with pytest.raises(CommandError, match="already"):
        call_command("api_token_create", member.username, "--name", "nightly export", stdout=StringIO())
    with pytest.raises(CommandError, match="No user"):
        call_command("api_token_create", "nobody", stdout=StringIO())

"""Production hardening: deploy checks, cookies, content security policy, framing, login throttling,
password rules, media behind the record's permissions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def test_the_deploy_checks_pass_in_production():
    env = {**os.environ, "LIMS_PRODUCTION": "1", "SECRET_KEY": "k" * 20 + "-production-only-8f3Zq!x9#Lr2Tv7Wm" * 2}
    env.pop("DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {**os.environ, "LIMS_PRODUCTION": "1"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_pages_carry_a_content_security_policy_without_unsafe_inline_and_refuse_framing(web):
    response = web.get("/")
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_cookies_are_http_only_and_secure_in_production():
    assert settings.SESSION_COOKIE_HTTPONLY and settings.CSRF_COOKIE_HTTPONLY
    text = (ROOT / "config" / "settings.py").read_text()
    production = text[text.index("if PRODUCTION:") :]
    for name in ("SESSION_COOKIE_SECURE = True", "CSRF_COOKIE_SECURE = True", "SECURE_HSTS_SECONDS"):
        assert name in production


INLINE = [
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a <style> block"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_templates_hold_no_inline_script_or_style():
    """The policy forbids them: they would not run. scripts/csp_inline_to_classes.py moves styles out."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, "\n".join(found)


@pytest.mark.django_db
def test_logins_are_throttled_after_repeated_failures(client):
    user = UserFactory(username="alice", password="correct horse battery staple")
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery staple"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = UserFactory(username="bob", password="another good passphrase")
    assert (
        client.post("/accounts/login/", {"username": "bob", "password": "another good passphrase"}).status_code == 302
    )
    assert int(client.session["_auth_user_id"]) == other.pk
    assert user.pk != other.pk


@pytest.mark.django_db
def test_a_successful_login_resets_the_failure_count(client):
    UserFactory(username="carol", password="a long enough passphrase")
    for _ in range(settings.AXES_FAILURE_LIMIT - 2):
        client.post("/accounts/login/", {"username": "carol", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "carol", "password": "a long enough passphrase"}).status_code
        == 302
    )
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 2):
        client.post("/accounts/login/", {"username": "carol", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "carol", "password": "a long enough passphrase"}).status_code
        == 302
    )


@pytest.mark.parametrize("password", ["123", "password", "12345678901", "carol-lab"])
def test_weak_passwords_are_refused(password):
    from django.contrib.auth import get_user_model

    with pytest.raises(ValidationError):
        validate_password(password, user=get_user_model()(username="carol-lab"))


@pytest.mark.django_db
def test_stored_files_are_not_served_under_the_media_url(client, web, lab, member):
    from characterization import services
    from tests.characterization.factories import make_check, small_tiff, upload

    check = make_check(lab=lab, user=member)
    image = services.check_image_upload(lm_check=check, upload=upload(small_tiff(), "a.tif"), by=member)
    url = f"/{settings.MEDIA_URL.strip('/')}/{image.file.name}"
    assert web.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 404
    assert client.get(f"/characterization/images/{image.pk}/original/").status_code == 302

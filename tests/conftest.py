"""Shared fixtures. Tasks run eagerly unless LIMS_REAL_WORKER=1 (then .ci/run has a worker up)."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from tests.factories import LabFactory, MembershipFactory, UserFactory

REAL_WORKER = os.environ.get("LIMS_REAL_WORKER") == "1"


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = not REAL_WORKER
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from lims.celery import app

    app.conf.task_always_eager = not REAL_WORKER


@pytest.fixture
def lab(db):
    return LabFactory()


@pytest.fixture
def other_lab(db):
    return LabFactory()


@pytest.fixture
def member(lab):
    return MembershipFactory(lab=lab, role="member").user


@pytest.fixture
def lab_admin(lab):
    return MembershipFactory(lab=lab, role="lab_admin").user


@pytest.fixture
def reviewer(lab):
    return MembershipFactory(lab=lab, role="qc_reviewer").user


@pytest.fixture
def outsider(other_lab):
    return MembershipFactory(lab=other_lab, role="lab_admin").user


@pytest.fixture
def api(member):
    client = APIClient()
    client.force_authenticate(member)
    return client


@pytest.fixture
def api_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def user(db):
    return UserFactory()

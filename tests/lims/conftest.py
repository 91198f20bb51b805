"""The populated installation the permission matrix and the crawler request every URL against: built once
per test module (tests/lims/urlmap.py), each test in a savepoint of it."""

from __future__ import annotations

import pytest

from tests.lims import urlmap


@pytest.fixture(scope="module")
def _world(django_db_setup, django_db_blocker, tmp_path_factory):
    with urlmap.world_in_a_transaction(django_db_blocker, tmp_path_factory.mktemp("world")) as built:
        yield built


@pytest.fixture
def world(_world, db, settings):
    settings.MEDIA_ROOT = _world.media
    return _world

"""Named API tokens: created and revoked from a page, stored hashed, optionally read-only."""

from __future__ import annotations

import hashlib
import re

from rest_framework.test import APIClient

from grids.models import Grid, GridLot
from lims import tokens
from lims.models import ApiToken
from tests.factories import GridLotFactory, grid_type, make_grids


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_person_creates_a_named_token_on_the_page_and_sees_its_key_once(web, member):
    page = web.post("/account/tokens/", {"name": "nightly export", "read_only": "on"})
    assert page.status_code == 200
    key = re.search(r'<code id="new-key">(sxt_[^<]+)</code>', page.content.decode()).group(1)
    token = ApiToken.objects.get(user=member)
    assert token.name == "nightly export" and token.read_only
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in token.key_hash
    listing = web.get("/account/tokens/").content.decode()
    assert "nightly export" in listing and token.key_prefix in listing and key not in listing


def test_a_token_name_is_required_and_unique_among_your_active_tokens(web, member):
    assert "This field is required" in web.post("/account/tokens/", {"name": ""}).content.decode()
    web.post("/account/tokens/", {"name": "script"})
    again = web.post("/account/tokens/", {"name": "script"}).content.decode()
    assert "already" in again and ApiToken.objects.filter(user=member).count() == 1


def test_a_token_reads_the_api_like_its_owner(lab, member):
    make_grids(lab=lab, user=member, count=2)
    _, key = tokens.api_token_create(user=member, name="reader", read_only=True)
    response = _client(key).get("/api/v1/grids/")
    assert response.status_code == 200 and response.json()["count"] == 2
    assert ApiToken.objects.get(name="reader").last_used_at is not None


def test_a_read_only_token_is_refused_every_write_and_nothing_changes(lab, member):
    grid = make_grids(lab=lab, user=member, count=1)[0]
    _, key = tokens.api_token_create(user=member, name="reader", read_only=True)
    client = _client(key)
    lot = client.post(
        "/api/v1/grid-lots/", {"grid_type": grid_type().pk, "lab": lab.pk, "lot_number": "RO-1", "quantity": 3},
        format="json",
    )  # fmt: skip
    assert lot.status_code == 403 and "read-only" in lot.json()["detail"]
    discard = client.post(f"/api/v1/grids/{grid.pk}/discard/", {"reason": "x"}, format="json")
    assert discard.status_code == 403
    assert not GridLot.objects.filter(lot_number="RO-1").exists()
    assert Grid.objects.get(pk=grid.pk).state == "registered"


def test_a_read_write_token_writes(lab, member):
    _, key = tokens.api_token_create(user=member, name="writer", read_only=False)
    lot = GridLotFactory(lab=lab, created_by=member, quantity=5)
    response = _client(key).post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 2}, format="json")
    assert response.status_code == 201


def test_a_revoked_token_fails_at_once(web, lab, member):
    _, key = tokens.api_token_create(user=member, name="old", read_only=True)
    client = _client(key)
    assert client.get("/api/v1/grids/").status_code == 200
    token = ApiToken.objects.get(name="old")
    web.post(f"/account/tokens/{token.pk}/revoke/")
    response = client.get("/api/v1/grids/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_made_up_key_fails_and_another_persons_token_cannot_be_revoked(web, outsider):
    assert _client("sxt_not-a-real-key").get("/api/v1/grids/").status_code == 401
    foreign, key = tokens.api_token_create(user=outsider, name="theirs")
    assert web.post(f"/account/tokens/{foreign.pk}/revoke/").status_code == 404
    assert _client(key).get("/api/v1/grids/").status_code == 200


def test_clear_text_keys_of_the_retired_drf_tokens_are_imported_hashed_and_keep_working(db, member):
    from django.db import connection

    # The table DRF's authtoken left behind, with one key in clear.
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {tokens.LEGACY_TABLE} ({connection.ops.quote_name('key')} varchar(40) PRIMARY KEY, "
            "created timestamp NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO {tokens.LEGACY_TABLE} VALUES (%s, %s, %s)",
            ["0123456789abcdef0123456789abcdef01234567", "2025-03-01 10:00:00", member.pk],
        )
    assert tokens.legacy_tokens_import(connection) == 1
    assert tokens.LEGACY_TABLE not in connection.introspection.table_names()  # no key left in clear
    token = ApiToken.objects.get(user=member)
    assert token.key_hash == hashlib.sha256(b"0123456789abcdef0123456789abcdef01234567").hexdigest()
    assert token.name.startswith("token from before hashed tokens") and token.created_at.year == 2025
    assert _client("0123456789abcdef0123456789abcdef01234567").get("/api/v1/grids/").status_code == 200
    assert _client("0123456789abcdef0123456789abcdef0123456X").get("/api/v1/grids/").status_code == 401
    assert tokens.legacy_tokens_import(connection) == 0  # nothing left to import


def test_the_token_look_up_reads_the_owners_labs_and_staff_role_in_its_one_query(lab, other_lab, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lims import permissions
    from lims.models import FacilityStaff, Membership
    from tests.factories import UserFactory

    Membership.objects.create(lab=other_lab, user=member, role="qc_reviewer")
    FacilityStaff.objects.create(user=member)
    loner = UserFactory()
    _, key = tokens.api_token_create(user=member, name="reader", read_only=True)
    _, loner_key = tokens.api_token_create(user=loner, name="reader")
    with CaptureQueriesContext(connection) as queries:
        token = tokens.token_with_scope(tokens.hash_key(key))
        roles, staff = permissions.lab_roles(token.user), permissions.is_facility_staff(token.user)
    assert len(queries) == 1
    assert roles == {lab.pk: "member", other_lab.pk: "qc_reviewer"} and staff is True
    assert token.user == member and token.name == "reader" and token.read_only is True
    # The values come as the ORM gives them on this database (SQLite stores booleans as 0/1, times as text).
    stored = ApiToken.objects.select_related("user").get(pk=token.pk)
    for field in ApiToken._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(stored, field.attname), field.name
        assert type(getattr(token, field.attname)) is type(getattr(stored, field.attname)), field.name
    for field in type(member)._meta.concrete_fields:
        assert getattr(token.user, field.attname) == getattr(stored.user, field.attname), field.name
        assert type(getattr(token.user, field.attname)) is type(getattr(stored.user, field.attname)), field.name
    assert token.created_at.tzinfo is not None and token.user.is_active is True
    alone = tokens.token_with_scope(tokens.hash_key(loner_key))
    with CaptureQueriesContext(connection) as queries:
        assert permissions.lab_roles(alone.user) == {} and permissions.is_facility_staff(alone.user) is False
    assert len(queries) == 0 and alone.user == loner
    assert tokens.token_with_scope(tokens.hash_key("sxt_made-up")) is None

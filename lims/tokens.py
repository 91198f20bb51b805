"""API tokens: create, revoke, and authenticate (`Authorization: Bearer sxt_…` or `Token sxt_…`)."""

from __future__ import annotations

import datetime
import functools
import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import authentication, exceptions

from lims import permissions
from lims.errors import ConflictError, DomainError
from lims.models import ApiToken, FacilityStaff, Membership

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)  # at most one write per token per minute


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str, read_only: bool = False) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and its key (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise DomainError("name: say what the token is for.", field="name")
    if len(name) > 80:
        raise DomainError("name: at most 80 characters.", field="name")
    key = ApiToken.PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user, name=name, read_only=read_only, key_hash=hash_key(key), key_prefix=key[:12]
            )
    except IntegrityError:
        raise ConflictError(f"You have a token named {name!r} already; choose another name.", field="name") from None
    return token, key


LEGACY_TABLE = "authtoken_token"


def legacy_tokens_import(connection, model=ApiToken) -> int:
    """Turn the keys of DRF's retired `authtoken` (stored in clear) into hashed tokens named after them, then drop
    its table: the old scripts keep working with the same key, and no key stays readable in the database.
    Returns how many were imported; run by migration lims 0003 with its historical model (safe to run again)."""
    if LEGACY_TABLE not in connection.introspection.table_names():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {LEGACY_TABLE}")
        rows = cursor.fetchall()
    imported = 0
    for key, user_id, created in rows:
        key_hash = hash_key(key)
        if model.objects.filter(key_hash=key_hash).exists():
            continue
        name = f"token from before hashed tokens ({key[:6]}…)"
        model.objects.create(user_id=user_id, name=name, key_hash=key_hash, key_prefix=key[:12])
        if isinstance(created, str):
            created = parse_datetime(created)
        if created is not None:
            if timezone.is_naive(created):  # SQLite keeps no zone; Django wrote it in UTC
                created = timezone.make_aware(created, datetime.UTC)
            model.objects.filter(key_hash=key_hash).update(created_at=created)
        imported += 1
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {LEGACY_TABLE}")
    return imported


def api_token_revoke(*, token: ApiToken, by) -> ApiToken:
    """Revoke one of your own tokens (at once: the next request with it is refused)."""
    if token.user_id != by.pk:
        raise DomainError("You can revoke only your own tokens.")
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def api_token_list(*, user):
    return ApiToken.objects.filter(user=user)


def token_with_scope(key_hash: str) -> ApiToken | None:
    """The token with this hash and its user, with the user's lab roles and facility-staff flag already cached
    on the user (`permissions.remember_lab_roles`), all in one query: one row per membership (or one row with
    none). An API request used to make three queries for what every list then reads (token, memberships,
    staff), each a round trip to the database and a query for the ORM to compile (issue 10).

    Every API request runs it, so its SQL is written once per database (`_token_query`) instead of being
    compiled by the ORM each time; the values go through the same converters the ORM applies."""
    db = router.db_for_read(ApiToken)
    sql, token_columns, user_columns = _token_query(db)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [key_hash])
        rows = cursor.fetchall()
    if not rows:
        return None
    # each row: the token's columns, the user's, then membership lab, membership role, facility staff
    n_token, n_user = len(token_columns), len(user_columns)
    first = rows[0]
    token = _instance(ApiToken, db, first[:n_token], token_columns)
    token.user = _instance(get_user_model(), db, first[n_token : n_token + n_user], user_columns)
    roles = {row[-3]: row[-2] for row in rows if row[-3] is not None}
    permissions.remember_lab_roles(token.user, roles, bool(first[-1]))
    return token


@functools.cache
def _token_query(db: str) -> tuple[str, list, list]:
    """SELECT token.*, user.*, membership.lab_id, membership.role, EXISTS(facility staff) for one key hash, and
    for each model's columns `(attname, converters, column)`: what the ORM would apply to it on this database."""
    connection = connections[db]
    quote = connection.ops.quote_name
    user_model = get_user_model()
    tables = {"t": ApiToken, "u": user_model}
    columns = {alias: [] for alias in tables}
    for alias, model in tables.items():
        for field in model._meta.concrete_fields:
            col = field.get_col(alias)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            columns[alias].append((field.attname, converters, col))
    select = ", ".join(f"{alias}.{quote(col.target.column)}" for alias in tables for _, _, col in columns[alias])
    membership, staff = Membership._meta, FacilityStaff._meta
    user_pk = f"u.{quote(user_model._meta.pk.column)}"
    sql = (
        f"SELECT {select}, m.{quote(membership.get_field('lab').column)}, m.{quote(membership.get_field('role').column)}, "
        f"EXISTS (SELECT 1 FROM {quote(staff.db_table)} s WHERE s.{quote(staff.get_field('user').column)} = {user_pk}) "
        f"FROM {quote(ApiToken._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u ON {user_pk} = t.{quote(ApiToken._meta.get_field('user').column)} "
        f"LEFT JOIN {quote(membership.db_table)} m ON m.{quote(membership.get_field('user').column)} = {user_pk} "
        f"WHERE t.{quote(ApiToken._meta.get_field('key_hash').column)} = %s"
    )
    return sql, columns["t"], columns["u"]


def _instance(model, db: str, values, columns):
    """A model instance from its columns' database values, converted as the ORM converts them."""
    connection = connections[db]
    converted = []
    for value, (_, converters, col) in zip(values, columns, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(db, [attname for attname, _, _ in columns], converted)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates `Bearer sxt_…` (or `Token sxt_…`); a read-only token is refused any write (403).

    A key without the `sxt_` prefix is one of DRF's retired keys, imported hashed (`legacy_tokens_import`): it is
    looked up the same way.
    """

    keywords = ("bearer", "token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].decode(errors="replace").lower() not in self.keywords:
            return None
        key = parts[1].decode(errors="replace")
        token = token_with_scope(hash_key(key))
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked; create a new one on your tokens page.")
        if token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied("This token is read-only; use a read-write token to change records.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return "Bearer"

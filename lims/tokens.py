"""API tokens: create, revoke, and authenticate (`Authorization: Bearer sxt_…` or `Token sxt_…`)."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import authentication, exceptions

from lims.errors import ConflictError, DomainError
from lims.models import ApiToken

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
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
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

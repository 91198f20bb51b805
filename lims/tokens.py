"""API tokens: create, revoke, and authenticate (`Authorization: Bearer sxt_…` or `Token sxt_…`)."""

from __future__ import annotations

import datetime
import hashlib
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone
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

    Keys without the `sxt_` prefix are left to the next authentication class.
    """

    keywords = ("bearer", "token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].decode(errors="replace").lower() not in self.keywords:
            return None
        key = parts[1].decode(errors="replace")
        if not key.startswith(ApiToken.PREFIX):
            return None
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

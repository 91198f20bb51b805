"""Domain errors: raised by services, turned into form errors on pages and HTTP answers in the API."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `message` says what to fix. Nothing was changed."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class ConflictError(DomainError):
    """Refused because of the record's current state (illegal transition, taken slot, no stock)."""

    status_code = 409


class PermissionDeniedError(DomainError):
    status_code = 403

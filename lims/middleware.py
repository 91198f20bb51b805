import logging

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

log = logging.getLogger(__name__)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs a login. The API answers 401/403 itself (token or session auth in DRF)."""

    exempt_prefixes = ("/api/", "/" + settings.STATIC_URL.lstrip("/"))

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.exempt_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class DatabaseUnavailableMiddleware:
    """A request whose database connection drops (or cannot be opened) is answered 503 with a message to
    try again, not a server error; its transaction was rolled back, so nothing of it was written.

    The page is plain HTML that needs no database (no template, no session, no user)."""

    PAGE = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Database unavailable</title></head>"
        "<body><h1>The database is not answering</h1><p>Nothing of this request was saved. Try again in a "
        "minute; if it persists, tell whoever runs SXT LIMS.</p></body></html>"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"detail": "The database is not answering; nothing of this request was saved. Try again in a minute."},
                status=503,
            )
        else:
            response = HttpResponse(self.PAGE, status=503)
        response["Retry-After"] = "30"
        return response

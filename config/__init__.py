"""Project wiring: settings, root URLs, the API router, WSGI/ASGI, the Celery app and the demo loader.

It sits above every app and may import any of them; no app imports it (import-linter keeps it so).
Loading the Celery app here makes @shared_task bind to it.
"""

from config.celery import app as celery_app

__all__ = ("celery_app",)

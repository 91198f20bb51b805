"""The Celery app: settings under the CELERY_ namespace, tasks discovered in every app."""

import os

from celery import Celery

from config import broker

broker.install()  # the embedded broker's messages appear whole (config/broker.py)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sxt_lims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

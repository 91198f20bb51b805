from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Installed only so `manage.py load_demo` (which loads every app's demo data) is found here."""

    name = "config"
    verbose_name = "Project wiring"

from django.apps import AppConfig


class VitrificationConfig(AppConfig):
    name = "vitrification"

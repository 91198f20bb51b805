from django.apps import AppConfig


class ReconstructionConfig(AppConfig):
    name = "reconstruction"

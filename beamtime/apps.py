from django.apps import AppConfig


class BeamtimeConfig(AppConfig):
    name = "beamtime"

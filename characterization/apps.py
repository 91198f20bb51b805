from django.apps import AppConfig


class CharacterizationConfig(AppConfig):
    name = "characterization"

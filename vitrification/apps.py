from django.apps import AppConfig


class VitrificationConfig(AppConfig):
    name = "vitrification"

    def ready(self) -> None:
        from vitrification import insights

        insights.register()

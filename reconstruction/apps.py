from django.apps import AppConfig


class ReconstructionConfig(AppConfig):
    name = "reconstruction"

    def ready(self) -> None:
        from reconstruction import extensions, insights

        extensions.register()
        insights.register()

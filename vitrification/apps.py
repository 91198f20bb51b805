from django.apps import AppConfig


class VitrificationConfig(AppConfig):
    name = "vitrification"

    def ready(self) -> None:
        from grids.provenance import provenance_section_register
        from vitrification.imports import register_imports
        from vitrification.provenance import vitrification_section

        register_imports()
        provenance_section_register("vitrification", vitrification_section, order=50)

        from vitrification import insights

        insights.register()

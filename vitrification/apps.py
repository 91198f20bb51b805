from django.apps import AppConfig


class VitrificationConfig(AppConfig):
    name = "vitrification"

    def ready(self) -> None:
        from grids.provenance import provenance_section_register
        from vitrification.provenance import vitrification_section

        provenance_section_register("vitrification", vitrification_section, order=50)

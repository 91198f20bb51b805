from django.apps import AppConfig


class CharacterizationConfig(AppConfig):
    name = "characterization"

    def ready(self) -> None:
        from characterization.api import grid_detail_fields
        from grids.api import grid_detail_fields_register

        grid_detail_fields_register(grid_detail_fields)

        from characterization.provenance import checks_section, qc_decisions_section
        from grids.provenance import provenance_section_register

        provenance_section_register("checks", checks_section, order=60)
        provenance_section_register("qc_decisions", qc_decisions_section, order=70)

        from characterization import insights

        insights.register()
        insights.register_next_steps()

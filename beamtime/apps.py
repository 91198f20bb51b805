from django.apps import AppConfig


class BeamtimeConfig(AppConfig):
    name = "beamtime"

    def ready(self) -> None:
        from beamtime.access import grids_on_staffed_sheets
        from grids.selectors import grid_visibility_register

        grid_visibility_register(grids_on_staffed_sheets)

        from beamtime.provenance import gate_evaluations_section, sample_sheets_section, shipments_section
        from grids.provenance import provenance_section_register

        provenance_section_register("gate_evaluations", gate_evaluations_section, order=80)
        provenance_section_register("sample_sheets", sample_sheets_section, order=90)
        provenance_section_register("shipments", shipments_section, order=100)

        from beamtime import insights

        insights.register()
        insights.register_next_steps()

from django.apps import AppConfig


class BeamtimeConfig(AppConfig):
    name = "beamtime"

    def ready(self) -> None:
        from beamtime.access import grids_on_staffed_sheets
        from grids.selectors import grid_visibility_register

        grid_visibility_register(grids_on_staffed_sheets)

        from beamtime import insights

        insights.register()
        insights.register_next_steps()

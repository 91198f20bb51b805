from django.apps import AppConfig


class CharacterizationConfig(AppConfig):
    name = "characterization"

    def ready(self) -> None:
        from characterization.api import grid_detail_fields
        from grids.api import grid_detail_fields_register

        grid_detail_fields_register(grid_detail_fields)

        from characterization import insights

        insights.register()
        insights.register_next_steps()

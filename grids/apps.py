from django.apps import AppConfig


class GridsConfig(AppConfig):
    name = "grids"

    def ready(self) -> None:
        from grids.imports import register_imports
        from grids.provenance import register_grid_sections

        register_grid_sections()
        register_imports()

        from grids import next_steps
        from grids.insights import register_grid_parts

        register_grid_parts()
        next_steps.register()

from django.apps import AppConfig


class LimsConfig(AppConfig):
    name = "lims"
    verbose_name = "Labs and people"

    def ready(self):
        from lims import (
            api_schema,  # noqa: F401  (registers the token auth scheme with the schema generator)
            db,
        )

        db.connect_signals()

"""DRF's authtoken kept API keys in clear: import each as a hashed ApiToken (the same key keeps working) and drop
its table (lims.tokens.legacy_tokens_import)."""

from django.db import migrations


def import_legacy_tokens(apps, schema_editor):
    from lims.tokens import legacy_tokens_import

    legacy_tokens_import(schema_editor.connection, apps.get_model("lims", "ApiToken"))


class Migration(migrations.Migration):
    dependencies = [("lims", "0002_api_tokens")]

    operations = [migrations.RunPython(import_legacy_tokens, migrations.RunPython.noop)]

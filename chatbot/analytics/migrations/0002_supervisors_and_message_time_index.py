"""The "Supervisors" group (may view the Reports page), and an index on the time a
message was stored: the top intents and top fallback messages of a date range
read it instead of scanning every message.

The index is on the conversations app's table but created here, so that app's
models stay as they are; `IF NOT EXISTS` lets that app declare it later."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Supervisors"


def create_group(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(Permission.objects.get(codename="view_reports", content_type__app_label="analytics"))


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]
    operations = [
        migrations.RunPython(create_group, remove_group),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_message_created_at ON conversations_message (created_at)",
            "DROP INDEX IF EXISTS analytics_message_created_at",
        ),
    ]

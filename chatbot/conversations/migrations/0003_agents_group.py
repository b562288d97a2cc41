"""Once created the "Agents" group by toggling app configs inside a migration. The group
is now made by a post_migrate handler (chatbot/conversations/apps.py), after Django has
created every permission; this migration stays, empty, for databases that applied it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = []

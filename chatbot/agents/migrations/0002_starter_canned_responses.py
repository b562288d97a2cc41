"""Once seeded the demo store's canned responses into every database. They moved to
`manage.py bootstrap_demo` (chatbot/agents/demo.py); this migration stays, empty, so
databases that applied it keep a consistent history. Rows it added are left alone."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = []

"""The index the API's conversation list pages along: newest first, keyset on (created_at, id).

Created from this app so the conversations app's models stay untouched; it can move
into Conversation.Meta.indexes (same name) when that app next changes its schema.
"""

from django.db import migrations

INDEX = "api_conversation_created_id"


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial"), ("conversations", "0003_agents_group")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON conversations_conversation (created_at DESC, id DESC)",
            f"DROP INDEX IF EXISTS {INDEX}",
        )
    ]

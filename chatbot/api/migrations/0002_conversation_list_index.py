"""The indexes the API's conversation list pages along: newest first, keyset on
(created_at, id), alone or after an equality filter on status or assigned agent.

Created from this app so the conversations app's models stay untouched; they can move
into Conversation.Meta.indexes (same names) when that app next changes its schema.
"""

from django.db import migrations

INDEXES = {
    "api_conversation_created_id": "created_at DESC, id DESC",
    "api_conversation_status_created_id": "status, created_at DESC, id DESC",
    "api_conversation_agent_created_id": "assigned_agent_id, created_at DESC, id DESC",
}


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial"), ("conversations", "0003_agents_group")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {name} ON conversations_conversation ({columns})",
            f"DROP INDEX IF EXISTS {name}",
        )
        for name, columns in INDEXES.items()
    ]

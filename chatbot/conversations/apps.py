from django.apps import AppConfig
from django.db.models.signals import post_migrate

AGENTS_GROUP = "Agents"


def create_agents_group(sender, using="default", **kwargs) -> None:
    """Members of "Agents" may work in the agent dashboard. Runs after every `migrate`,
    when Django has created the permissions, so it needs no tricks inside a migration."""
    from django.contrib.auth.models import Group, Permission

    try:
        permission = Permission.objects.using(using).get(
            codename="work_in_dashboard", content_type__app_label="conversations"
        )
    except Permission.DoesNotExist:  # a partial migrate that stopped before this app
        return
    group, _ = Group.objects.using(using).get_or_create(name=AGENTS_GROUP)
    group.permissions.add(permission)


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        post_migrate.connect(create_agents_group, sender=self, dispatch_uid="conversations.create_agents_group")
        from chatbot.conversations.services import handoff

        handoff.connect_signals()

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "chatbot.agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # The chat asks this app who is online and tells it what visitors said; it
        # never imports the dashboard's code (no import circle between the apps).
        from django.contrib.auth import get_user_model, user_logged_out
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed, post_save

        from chatbot.agents import presence, services, signals
        from chatbot.conversations import services as chat

        chat.register_agents_online_probe(presence.any_agent_online)
        chat.visitor_message_answered.connect(services.suggest_replies_for, dispatch_uid="agents.suggest_replies")
        chat.conversation_waiting.connect(services.auto_assign_waiting, dispatch_uid="agents.auto_assign")
        # A dashboard socket lives no longer than its login and the user's agent rights.
        user_model = get_user_model()
        user_logged_out.connect(signals.on_logout, dispatch_uid="agents.recheck_on_logout")
        post_save.connect(signals.on_user_saved, sender=user_model, dispatch_uid="agents.recheck_on_user_saved")
        m2m_changed.connect(
            signals.on_user_groups_changed, sender=user_model.groups.through, dispatch_uid="agents.recheck_on_groups"
        )
        for through in (user_model.user_permissions.through, Group.permissions.through):
            m2m_changed.connect(
                signals.on_permissions_changed, sender=through, dispatch_uid=f"agents.recheck_{through}"
            )

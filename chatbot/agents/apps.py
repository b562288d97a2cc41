from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "chatbot.agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # The chat asks this app who is online and tells it what visitors said; it
        # never imports the dashboard's code (no import circle between the apps).
        from chatbot.agents import presence, services
        from chatbot.conversations import services as chat

        chat.register_agents_online_probe(presence.any_agent_online)
        chat.visitor_message_answered.connect(services.suggest_replies_for, dispatch_uid="agents.suggest_replies")
        chat.conversation_waiting.connect(services.auto_assign_waiting, dispatch_uid="agents.auto_assign")

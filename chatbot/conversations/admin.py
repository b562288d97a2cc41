from django.contrib import admin

from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.nlu import explanations


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["seq", "sender", "text", "intent", "confidence", "internal", "created_at"]
    readonly_fields = fields
    show_change_link = True  # the message's own page says why the bot understood it so


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "visitor", "status", "assigned_agent", "created_at", "updated_at"]
    list_filter = ["status"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """One message, read only; a visitor's message with why the bot understood it so."""

    list_display = ["__str__", "sender", "intent", "confidence", "model_version", "created_at"]
    list_filter = ["sender"]
    search_fields = ["text"]
    list_select_related = ["model_version"]
    fields = ["conversation", "seq", "sender", "text", "intent", "confidence", "out_of_scope", "model_version"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if message is not None and message.sender == Message.Sender.VISITOR:
            extra_context["why"] = explanations.for_page(message.pk)
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "identity_verified", "created_at", "last_seen_at"]
    exclude = ["token_hash"]
    search_fields = ["email", "name", "external_id"]

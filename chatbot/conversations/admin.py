from django.contrib import admin

from chatbot.conversations.models import BusinessHours, Conversation, Message, Visitor
from chatbot.nlu import explanations


class MessageInline(admin.TabularInline):
    """The transcript, read only."""

    model = Message
    extra = 0
    fields = ["seq", "sender", "text", "intent", "confidence", "internal", "created_at"]
    readonly_fields = fields
    show_change_link = True  # the message's own page says why the bot understood it so
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """A conversation is changed by what happens in it (the dashboard and the widget),
    never by editing its seq or status here: the admin shows it read only."""

    list_display = ["id", "visitor", "status", "assigned_agent", "csat", "created_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["id", "visitor__email", "messages__text"]
    fields = readonly_fields = [
        "id",
        "visitor",
        "status",
        "assigned_agent",
        "handoff_reason",
        "offline_message",
        "csat",
        "created_at",
        "waiting_since",
        "closed_at",
    ]
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing only: the page shows the transcript; nothing on it can be saved.
        return False


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


@admin.register(BusinessHours)
class BusinessHoursAdmin(admin.ModelAdmin):
    list_display = ["__str__", "enabled", "timezone", "open_days", "opens_at", "closes_at", "reply_time_text"]

    def has_add_permission(self, request):
        return not BusinessHours.objects.exists()  # one row for the site

from django.contrib import admin

from chatbot.conversations.models import BusinessHours, Conversation, Message, Visitor


class MessageInline(admin.TabularInline):
    """The transcript, read only."""

    model = Message
    extra = 0
    fields = ["seq", "sender", "text", "intent", "confidence", "internal", "created_at"]
    readonly_fields = fields
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


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "created_at", "last_seen_at"]
    exclude = ["token_hash"]


@admin.register(BusinessHours)
class BusinessHoursAdmin(admin.ModelAdmin):
    list_display = ["__str__", "enabled", "timezone", "open_days", "opens_at", "closes_at", "reply_time_text"]

    def has_add_permission(self, request):
        return not BusinessHours.objects.exists()  # one row for the site

from django.contrib import admin

from chatbot.conversations.models import Conversation, Message, Visitor


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["seq", "sender", "text", "intent", "confidence", "internal", "created_at"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "visitor", "status", "assigned_agent", "created_at", "updated_at"]
    list_filter = ["status"]
    inlines = [MessageInline]


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "identity_verified", "created_at", "last_seen_at"]
    exclude = ["token_hash"]
    search_fields = ["email", "name", "external_id"]

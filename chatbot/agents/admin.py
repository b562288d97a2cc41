from django.contrib import admin

from chatbot.agents.models import CannedResponse


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "title", "updated_at"]
    search_fields = ["shortcut", "title", "text"]

"""The audit log in the admin: readable by whoever may view it, changed by nobody."""

from django.contrib import admin

from chatbot.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "target_repr"]
    list_filter = ["action"]
    search_fields = ["actor_name", "action", "target_repr", "target_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

"""The audit log in the admin: readable by whoever may view it, changed by nobody;
and AuditedAdmin, for the admin pages whose every change is a staff action to log."""

from django.contrib import admin

from chatbot.audit.models import AuditEntry
from chatbot.audit.services import record


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose additions, changes and deletions also go to the audit log as
    `<audit_name>.create`, `.change` (with the names of the changed fields, never their
    values: a secret may be one) and `.delete`. audit_additions=False where the service
    that creates the object records it itself."""

    audit_name = ""
    audit_additions = True

    def log_addition(self, request, obj, message):
        if self.audit_additions:
            record(request.user, f"{self.audit_name}.create", obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        fields = sorted({f for part in message or [] for f in part.get("changed", {}).get("fields", [])})
        record(request.user, f"{self.audit_name}.change", obj, fields=fields)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            record(request.user, f"{self.audit_name}.delete", obj)
        return super().log_deletions(request, queryset)


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

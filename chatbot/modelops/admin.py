"""What every model-version admin shares: the version in service is never deleted."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

ACTIVE_REFUSAL = "The active version is in service and cannot be deleted: activate or roll back to another one first."


class KeepActiveVersionAdmin:
    """Mixed into a version's ModelAdmin: deleting the active version is refused with a message."""

    def delete_view(self, request, object_id, extra_context=None):
        version = self.get_object(request, object_id)
        if version is not None and version.is_active:
            self.message_user(request, ACTIVE_REFUSAL, messages.ERROR)
            opts = self.model._meta
            return redirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request, queryset):
        if queryset.filter(is_active=True).exists():
            self.message_user(request, ACTIVE_REFUSAL + " The other selected versions were deleted.", messages.ERROR)
        super().delete_queryset(request, queryset.filter(is_active=False))

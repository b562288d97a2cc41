"""Erasures in the admin, and the visitors' export and erasure actions."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse

from chatbot.audit.services import record
from chatbot.conversations.admin import VisitorAdmin
from chatbot.privacy import services
from chatbot.privacy.models import Erasure


@admin.action(description="Export the selected visitors' data (JSON)", permissions=["view"])
def export_visitor_data(modeladmin, request, queryset):
    data = services.export_visitors(queryset)
    record(
        request.user,
        "privacy.export",
        f"{len(data['visitors'])} visitor(s)",
        visitor_ids=list(queryset.values_list("pk", flat=True)),
    )
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="visitor-data.json"'
    return response


@admin.action(description="Erase the selected visitors and everything made from their words", permissions=["delete"])
def erase_visitor_data(modeladmin, request, queryset):
    if not request.user.has_perm("conversations.delete_visitor"):
        raise PermissionDenied
    if request.POST.get("confirmed") == "yes":
        report = services.erase_visitors(queryset, actor=request.user, found_by="visitor_id")
        messages.success(request, f"Done: {report}.")
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Erase visitors' personal data",
        "opts": modeladmin.model._meta,
        "visitors": queryset,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/privacy/confirm_erase.html", context)


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "found_by", "counts", "intent_versions", "reply_versions", "needs_retraining"]
    readonly_fields = ["at", "actor", "found_by", "counts", "intent_versions", "reply_versions"]
    fields = [*readonly_fields, "retrained_at"]

    @admin.display(boolean=True, description="needs retraining")
    def needs_retraining(self, erasure: Erasure) -> bool:
        return erasure.needs_retraining

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The privacy app adds its actions to the visitors' admin, so conversations need not know of it.
VisitorAdmin.actions = [*(VisitorAdmin.actions or []), export_visitor_data, erase_visitor_data]

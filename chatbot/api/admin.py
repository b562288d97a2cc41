"""Tokens are made here and shown once; the call log is read-only."""

from django import forms
from django.contrib import admin, messages

from chatbot.api import tokens
from chatbot.api.models import ApiCall, ApiToken
from chatbot.audit.admin import AuditedAdmin


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="admin includes write, write includes read.",
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "scopes", "expires_at"]

    def clean_scopes(self):
        try:
            return tokens.check_scopes(self.cleaned_data["scopes"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    audit_name = "api_token"
    audit_additions = False  # tokens.create_token records it
    form = ApiTokenForm
    list_display = ["name", "prefix", "user", "scope_list", "expires_at", "last_used_at", "revoked_at", "created_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "last_used_at", "revoked_at", "created_at", "created_by"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    def get_readonly_fields(self, request, obj=None):
        # A token's user and scopes are fixed once it is handed out: make a new one instead.
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        row, token = tokens.create_token(
            name=obj.name,
            user=obj.user,
            scopes=obj.scopes,
            expires_at=obj.expires_at,
            created_by=request.user,
        )
        obj.pk = row.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"The token for {row.name} is {token} — copy it now: it is stored hashed and will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = sum(tokens.revoke(pk, actor=request.user) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} token(s) revoked.")


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ["created_at", "token", "method", "path", "status", "code", "duration_ms"]
    list_filter = ["status", "method"]
    search_fields = ["path", "code", "token__name", "token__prefix"]
    date_hierarchy = "created_at"
    list_select_related = ["token"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

"""Subscriptions (URL checked against the SSRF guard on save) and the delivery log with manual redelivery."""

from django import forms
from django.contrib import admin, messages

from chatbot.audit.admin import AuditedAdmin
from chatbot.audit.services import record
from chatbot.webhooks import services
from chatbot.webhooks.models import Delivery, Event, EventType, Subscription
from chatbot.webhooks.urlguard import UnsafeUrl, check_url


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Subscription
        fields = ["name", "url", "events", "secret", "is_active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except UnsafeUrl as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    audit_name = "webhook"
    form = SubscriptionForm
    list_display = ["name", "url", "is_active", "consecutive_failures", "disabled_at", "disabled_reason"]
    list_filter = ["is_active"]
    readonly_fields = ["consecutive_failures", "disabled_at", "disabled_reason", "created_at"]

    def save_model(self, request, obj, form, change):
        if obj.is_active and change and "is_active" in form.changed_data:
            obj.consecutive_failures, obj.disabled_at, obj.disabled_reason = 0, None, ""
        super().save_model(request, obj, form, change)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type",
        "event_id",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "subscription", "event__type"]
    search_fields = ["event__id"]
    list_select_related = ["event", "subscription"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["redeliver"]

    @admin.display(description="event", ordering="event__type")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.event.type

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redeliver the selected events now")
    def redeliver(self, request, queryset):
        count = services.redeliver(list(queryset.values_list("pk", flat=True)))
        record(request.user, "webhook.redeliver", f"{count} deliveries", deliveries=count)
        skipped = queryset.count() - count
        self.message_user(request, f"{count} delivery(ies) queued again.")
        if skipped:
            self.message_user(request, f"{skipped} skipped: their subscription is disabled.", messages.WARNING)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "type", "id"]
    list_filter = ["type"]
    readonly_fields = ["id", "type", "payload", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

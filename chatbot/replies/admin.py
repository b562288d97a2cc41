"""Reply models: train one, activate it, and see how often agents take its suggestions."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path

from chatbot.modelops.admin import KeepActiveVersionAdmin
from chatbot.replies import services
from chatbot.replies.models import ReplyModelVersion, SuggestionEvent


def _rate(accepted: int, shown: int) -> str:
    return f"{accepted / shown:.0%} of {shown}" if shown else "—"


@admin.register(ReplyModelVersion)
class ReplyModelVersionAdmin(KeepActiveVersionAdmin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "status",
        "progress",
        "is_active",
        "bleu",
        "pair_count",
        "acceptance",
        "created_at",
    ]
    list_filter = ["kind", "status", "is_active"]
    # What this page always showed; the lifecycle's own fields (busy, stage, report...) stay off it.
    fields = readonly_fields = [
        "kind",
        "status",
        "progress",
        "artifact_dir",
        "metrics",
        "error",
        "pair_count",
        "activate_when_ready",
        "is_active",
        "created_by",
        "created_at",
        "finished_at",
        "activated_at",
    ]
    actions = ["activate_selected", "force_activate_selected"]
    change_list_template = "admin/replies/replymodelversion/change_list.html"

    def has_add_permission(self, request):
        return False  # versions come from training

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                shown=Count("events"),
                accepted=Count("events", filter=Q(events__outcome__in=SuggestionEvent.ACCEPTED)),
            )
        )

    @admin.display(description="held-out BLEU")
    def bleu(self, version: ReplyModelVersion):
        return version.metrics.get("bleu", "—")

    @admin.display(description="accepted (as is + edited) / shown", ordering="accepted")
    def acceptance(self, version: ReplyModelVersion) -> str:
        return _rate(version.accepted, version.shown)

    def get_urls(self):
        return [
            path("train/", self.admin_site.admin_view(self.train_view), name="replies_replymodelversion_train"),
            *super().get_urls(),
        ]

    def train_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("nlu.train_model"):
            messages.error(request, "You may not train models.")
            return redirect("admin:replies_replymodelversion_changelist")
        try:
            version = services.start_training(request.POST.get("kind", "seq2seq"), user=request.user)
        except services.TrainingRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Training {version} started on the training queue.")
        return redirect("admin:replies_replymodelversion_changelist")

    @admin.action(description="Activate the selected version (one per kind)", permissions=["activate"])
    def activate_selected(self, request, queryset, force: bool = False):
        for version in queryset:
            try:
                version = services.activate_version(version.pk, user=request.user, force=force)
            except services.ActivationRefused as exc:
                messages.error(request, str(exc))
            else:
                note = f" {version.activation_note}" if version.activation_note else ""
                messages.success(request, f"Activated {version}.{note}")

    @admin.action(
        description="Activate the selected version even if its BLEU is lower (force)", permissions=["activate"]
    )
    def force_activate_selected(self, request, queryset):
        self.activate_selected(request, queryset, force=True)

    def has_activate_permission(self, request) -> bool:
        return request.user.has_perm("nlu.activate_model")


@admin.register(SuggestionEvent)
class SuggestionEventAdmin(admin.ModelAdmin):
    list_display = ["__str__", "model_version", "agent", "outcome", "created_at"]
    list_filter = ["outcome", "model_version"]
    readonly_fields = [f.name for f in SuggestionEvent._meta.fields]
    list_select_related = ["model_version", "agent"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """The acceptance rate of what the filters select, above the list."""
        response = super().changelist_view(request, extra_context)
        try:
            queryset = response.context_data["cl"].queryset
        except (AttributeError, KeyError):
            return response
        totals = queryset.aggregate(
            shown=Count("pk"), accepted=Count("pk", filter=Q(outcome__in=SuggestionEvent.ACCEPTED))
        )
        response.context_data["title"] = f"Suggestions: accepted {_rate(totals['accepted'], totals['shown'])}"
        return response

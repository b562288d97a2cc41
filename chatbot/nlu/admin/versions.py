"""Model versions: train a new one, watch it train, read its evaluation against
the version in service, activate it or roll back."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from chatbot.modelops.admin import KeepActiveVersionAdmin
from chatbot.nlu import evaluation, services
from chatbot.nlu.models import ModelVersion


def _require(request, permission: str) -> None:
    if not request.user.has_perm(f"nlu.{permission}"):
        raise PermissionDenied


def progress_payload(version: ModelVersion) -> dict:
    return {
        "id": version.pk,
        "status": version.status,
        "progress": version.progress,
        "stage": version.stage,
        "error": version.error,
        "finished": version.status in (ModelVersion.Status.READY, ModelVersion.Status.FAILED),
    }


@admin.register(ModelVersion)
class ModelVersionAdmin(KeepActiveVersionAdmin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "status_with_progress",
        "is_active",
        "mode",
        "holdout_accuracy",
        "holdout_macro_f1",
        "example_count",
        "created_at",
        "report_link",
    ]
    list_filter = ["status", "is_active", "mode"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name not in ("report", "baseline_report")]
    exclude = ["report", "baseline_report"]
    actions = ["train_like_selected", "activate_selected", "roll_back_to_selected"]
    change_list_template = "admin/nlu/modelversion/change_list.html"

    def has_add_permission(self, request):
        return False  # versions come from training, not from a form

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status")
    def status_with_progress(self, version: ModelVersion) -> str:
        if version.status in ModelVersion.OPEN_STATUSES:
            return format_html(
                '<span class="training-progress" data-progress-url="{}">{} '
                '<progress max="100" value="{}"></progress> <span class="pct">{}%</span> '
                '<span class="stage">{}</span></span>',
                reverse("admin:nlu_modelversion_progress", args=[version.pk]),
                version.status,
                round(version.progress * 100),
                round(version.progress * 100),
                version.stage,
            )
        if version.status == ModelVersion.Status.FAILED:
            return format_html('<span title="{}" style="color:#ba2121">failed</span>', version.error)
        return version.status

    @admin.display(description="held-out accuracy")
    def holdout_accuracy(self, version: ModelVersion) -> str:
        value = version.report.get("accuracy")
        return "-" if value is None else f"{value:.3f}"

    @admin.display(description="held-out macro-F1")
    def holdout_macro_f1(self, version: ModelVersion) -> str:
        value = version.report.get("macro_f1")
        return "-" if value is None else f"{value:.3f}"

    @admin.display(description="")
    def report_link(self, version: ModelVersion) -> str:
        return format_html('<a href="{}">Report</a>', reverse("admin:nlu_modelversion_report", args=[version.pk]))

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_train": request.user.has_perm("nlu.train_model"),
            "busy": ModelVersion.objects.filter(busy=True).first(),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("train/", wrap(self.train_view), name="nlu_modelversion_train"),
            path("<int:version_id>/progress/", wrap(self.progress_view), name="nlu_modelversion_progress"),
            path("<int:version_id>/report/", wrap(self.report_view), name="nlu_modelversion_report"),
            path("<int:version_id>/reliability.svg", wrap(self.reliability_view), name="nlu_modelversion_reliability"),
            path("<int:version_id>/confusion.png", wrap(self.confusion_view), name="nlu_modelversion_confusion"),
            path("<int:version_id>/activate/", wrap(self.activate_view), name="nlu_modelversion_activate"),
            path("<int:version_id>/rollback/", wrap(self.rollback_view), name="nlu_modelversion_rollback"),
            *super().get_urls(),
        ]

    # --- Training ---------------------------------------------------------------

    def _start_training(self, request, mode: str) -> ModelVersion | None:
        _require(request, "train_model")
        try:
            version = services.start_training(mode=mode, user=request.user)
        except services.TrainingRefused as exc:
            messages.error(request, str(exc))
            return None
        messages.success(request, f"Training {version} ({mode}) started on the training queue.")
        return version

    def train_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        mode = request.POST.get("mode", "fast")
        version = self._start_training(request, mode if mode in ("fast", "full") else "fast")
        if version is not None:
            return redirect("admin:nlu_modelversion_report", version.pk)
        return redirect("admin:nlu_modelversion_changelist")

    @admin.action(description="Train a new model (same mode as the selected one)")
    def train_like_selected(self, request, queryset):
        version = queryset.first()
        self._start_training(request, version.mode if version else "fast")

    def progress_view(self, request, version_id: int):
        _require(request, "view_modelversion")
        return JsonResponse(progress_payload(get_object_or_404(ModelVersion, pk=version_id)))

    # --- Evaluation report ----------------------------------------------------------

    def report_view(self, request, version_id: int):
        _require(request, "view_modelversion")
        version = get_object_or_404(ModelVersion.objects.select_related("created_by", "activated_by"), pk=version_id)
        active, baseline = services.comparison_with_active(version) if version.report else (None, {})
        if active is None and version.baseline_report:
            active, baseline = version.baseline_version, version.baseline_report
        report = version.report
        changes = evaluation.per_intent_changes(report, baseline)
        max_drop = settings.ACTIVATION_MAX_F1_DROP
        headline = []
        for key, label in (
            ("accuracy", "Accuracy"),
            ("macro_f1", "Macro-F1"),
            ("in_scope_accuracy", "In-scope accuracy"),
            ("oos_recall", "Out-of-scope recall"),
        ):
            if report.get(key) is not None:
                before = baseline.get(key) if baseline else None
                headline.append((label, report[key], before, None if before is None else report[key] - before))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Evaluation report: model {version}",
            "version": version,
            "report": report,
            "active": active,
            "baseline": baseline,
            "headline": headline,
            "changes": changes,
            "max_drop": max_drop,
            "dropped": {c.intent for c in changes if c.delta is not None and -c.delta > max_drop + 1e-9},
            "min_support": settings.ACTIVATION_MIN_SUPPORT,
            "problems": evaluation.activation_problems(report, baseline) if baseline else [],
            "progress": progress_payload(version),
            "can_activate": request.user.has_perm("nlu.activate_model"),
            "can_roll_back": version.activated_at is not None and not version.is_active,
            "open": version.status in ModelVersion.OPEN_STATUSES,
        }
        return TemplateResponse(request, "admin/nlu/modelversion/report.html", context)

    def confusion_view(self, request, version_id: int):
        _require(request, "view_modelversion")
        version = get_object_or_404(ModelVersion, pk=version_id)
        if not version.report:
            return HttpResponse("This version has no evaluation.", status=404, content_type="text/plain")
        png = evaluation.confusion_png(version.report, title=f"{version}: held-out confusion")
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"  # a version's report never changes
        return response

    def reliability_view(self, request, version_id: int):
        _require(request, "view_modelversion")
        version = get_object_or_404(ModelVersion, pk=version_id)
        if not version.report.get("reliability"):
            return HttpResponse("This version has no reliability diagram.", status=404, content_type="text/plain")
        svg = evaluation.reliability_svg(version.report, title=f"{version}: held-out")
        response = HttpResponse(svg, content_type="image/svg+xml")
        response["Cache-Control"] = "private, max-age=3600"  # a version's report never changes
        return response

    # --- Activation and rollback --------------------------------------------------------

    def activate_view(self, request, version_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        _require(request, "activate_model")
        self._activate(request, version_id, force=request.POST.get("force") == "on")
        return redirect("admin:nlu_modelversion_report", version_id)

    def rollback_view(self, request, version_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        _require(request, "activate_model")
        try:
            version = services.roll_back_to(version_id, user=request.user)
        except services.ActivationRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Rolled back: {version} answers from the next message on.")
        return redirect("admin:nlu_modelversion_report", version_id)

    def _activate(self, request, version_id: int, force: bool = False) -> None:
        try:
            version = services.activate_model_version(version_id, user=request.user, force=force)
        except services.ActivationRefused as exc:
            messages.error(request, str(exc))
        else:
            note = f" {version.activation_note}" if version.activation_note else ""
            messages.success(request, f"Activated {version}: it answers from the next message on.{note}")

    @admin.action(description="Activate the selected version")
    def activate_selected(self, request, queryset):
        _require(request, "activate_model")
        if queryset.count() != 1:
            messages.error(request, "Select exactly one version to activate.")
            return
        self._activate(request, queryset.get().pk)

    @admin.action(description="Roll back to the selected version")
    def roll_back_to_selected(self, request, queryset):
        _require(request, "activate_model")
        if queryset.count() != 1:
            messages.error(request, "Select exactly one version to roll back to.")
            return
        try:
            version = services.roll_back_to(queryset.get().pk, user=request.user)
        except services.ActivationRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Rolled back to {version}.")

"""Intents with their examples and responses; import and export of training data."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from chatbot.audit.services import record
from chatbot.nlu import training_data
from chatbot.nlu.models import Intent, Response, TrainingExample

# Room for the form's other fields and the multipart headers around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


class UploadSizeLimit(FileUploadHandler):
    """Stops reading an upload as soon as it passes IMPORT_MAX_UPLOAD_BYTES, before the
    next handler stores it, whatever the request's Content-Length said (issue 13)."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.limit = settings.IMPORT_MAX_UPLOAD_BYTES
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


def _too_large(limit: int) -> str:
    return f"The file is larger than {limit / 1024 / 1024:g} MB (IMPORT_MAX_UPLOAD_MB)."


def _counts(report) -> dict:
    return {"added": report.added, "skipped": report.skipped, "rejected": len(report.rejected)}


class TrainingExampleInline(admin.TabularInline):
    model = TrainingExample
    fields = ["text", "source", "created_at"]
    readonly_fields = ["created_at"]
    extra = 1


class QuickRepliesField(forms.CharField):
    """Quick replies as a list: one a line, not raw JSON."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        lines = (line.strip() for line in (value or "").splitlines())
        return [line for line in lines if line]

    def has_changed(self, initial, data):
        return (initial or []) != self.to_python(data)


class ResponseForm(forms.ModelForm):
    quick_replies = QuickRepliesField(required=False, help_text="One button a line.")

    class Meta:
        model = Response
        fields = ["text", "quick_replies", "position"]


class ResponseInline(admin.StackedInline):
    model = Response
    form = ResponseForm
    fields = ["text", "quick_replies", "position"]
    extra = 0


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV text,intent; JSONL; Rasa nlu.yml (3.1); or the store YAML with responses.")
    format = forms.ChoiceField(
        choices=[("", "From the file name"), *training_data.FORMATS.items()], required=False, label="Format"
    )


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "handoff", "example_count", "response_count"]
    search_fields = ["name", "description", "examples__text"]
    list_filter = ["handoff", "examples__source"]
    inlines = [ResponseInline, TrainingExampleInline]
    # An intent may answer with help-center articles instead of a response text (issue 16).
    autocomplete_fields = ["articles"]
    change_list_template = "admin/nlu/intent/change_list.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                example_total=Count("examples", distinct=True),
                response_total=Count("responses", distinct=True),
            )
        )

    @admin.display(description="examples", ordering="example_total")
    def example_count(self, intent: Intent) -> int:
        return intent.example_total

    @admin.display(description="responses", ordering="response_total")
    def response_count(self, intent: Intent) -> int:
        return intent.response_total

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="nlu_intent_import"),
            path("export/<str:fmt>/", wrap(self.export_view), name="nlu_intent_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "export_formats": training_data.FORMATS}
        return super().changelist_view(request, extra_context)

    @method_decorator(csrf_exempt)  # CSRF is checked below, after the upload handlers are set
    def import_view(self, request):
        limit = settings.IMPORT_MAX_UPLOAD_BYTES
        if request.method == "POST" and int(request.META.get("CONTENT_LENGTH") or 0) > limit + FORM_OVERHEAD_BYTES:
            # Refused from the header alone: the body is never read.
            request.upload_handlers = []
            return self._import_page(request, ImportForm(), None, error=_too_large(limit), status=413)
        size_limit = UploadSizeLimit(request)
        request.upload_handlers.insert(0, size_limit)
        return csrf_protect(self._import)(request, size_limit)

    def _import(self, request, size_limit: UploadSizeLimit):
        if not request.user.has_perm("nlu.add_trainingexample"):
            raise PermissionDenied
        report = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if size_limit.exceeded:
            return self._import_page(request, ImportForm(), None, error=_too_large(size_limit.limit), status=413)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > size_limit.limit:
                form.add_error("file", _too_large(size_limit.limit))
            else:
                content = upload.read()
                try:
                    fmt = form.cleaned_data["format"] or training_data.detect_format(upload.name, content)
                    report = training_data.import_training_data(content, fmt)
                except training_data.ImportFailed as exc:
                    form.add_error("file", f"{exc} Nothing was imported.")
                else:
                    messages.success(request, f"Imported {upload.name}: {report}.")
                    record(request.user, "training_data.import", upload.name, format=fmt, **_counts(report))
        return self._import_page(request, form, report)

    def _import_page(self, request, form, report, *, error: str = "", status: int = 200):
        if error:
            form.errors["file"] = form.error_class([error])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import training data",
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/nlu/intent/import.html", context, status=status)

    def export_view(self, request, fmt: str):
        if not request.user.has_perm("nlu.view_trainingexample"):
            raise PermissionDenied
        if fmt not in training_data.FORMATS:
            messages.error(request, f"Unknown export format {fmt!r}.")
            return redirect("admin:nlu_intent_changelist")
        content_type, extension = training_data.CONTENT_TYPES[fmt]
        record(request.user, "training_data.export", f"training data ({fmt})", format=fmt)
        response = HttpResponse(training_data.export_training_data(fmt), content_type=f"{content_type}; charset=utf-8")
        name = "nlu.yml" if fmt == "rasa" else f"training-data.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = ["text", "intent", "source", "created_at"]
    list_filter = ["source", "intent"]
    search_fields = ["text", "intent__name"]
    autocomplete_fields = ["intent"]
    list_select_related = ["intent"]

"""The help center in admin: articles with their passages, and an upload that imports
a zip, Markdown/HTML files or a CSV/JSONL FAQ all at once (or reports why not)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from chatbot.audit.services import record
from chatbot.knowledge import indexing, services
from chatbot.knowledge.models import Article, KnowledgeIndexVersion, Passage
from chatbot.modelops.lifecycle import ActivationRefused, TrainingRefused


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        return [single(d, initial) for d in data] if isinstance(data, list | tuple) else [single(data, initial)]


class ImportForm(forms.Form):
    files = MultipleFileField(help_text="A .zip of articles, .md or .html articles, or a .csv/.jsonl FAQ")
    unpublished = forms.BooleanField(required=False, label="Import as drafts (not published)")


class PassageInline(admin.TabularInline):
    model = Passage
    fields = ["position", "heading", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # passages come from the article body on save


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "locale", "published", "passage_count", "updated_at"]
    list_filter = ["published", "locale"]
    search_fields = ["title", "slug", "body", "keywords"]
    inlines = [PassageInline]
    change_list_template = "admin/knowledge/article/change_list.html"

    @admin.display(description="passages")
    def passage_count(self, obj):
        return obj.passages.count()

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="knowledge_article_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return redirect("admin:knowledge_article_changelist")
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            sources = [(f.name, f.read()) for f in form.cleaned_data["files"]]
            try:
                report = services.import_articles(sources, publish=not form.cleaned_data["unpublished"])
            except services.ImportFailed as exc:
                for name, reason in exc.problems:
                    messages.error(request, f"{name}: {reason}")
                messages.error(request, "Nothing was imported.")
            else:
                messages.success(request, f"Imported: {report}.")
                record(
                    request.user,
                    "knowledge.import",
                    ", ".join(name for name, _ in sources),
                    created=len(report.created),
                    updated=len(report.updated),
                )
                return redirect("admin:knowledge_article_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import articles",
        }
        return TemplateResponse(request, "admin/knowledge/article/import.html", context)


# --- The knowledge index's versions (issue 16) ------------------------------------


@admin.register(KnowledgeIndexVersion)
class KnowledgeIndexVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "is_active", "article_count", "passage_count", "index_id", "created_at"]
    list_filter = ["status", "is_active"]
    readonly_fields = [f.name for f in KnowledgeIndexVersion._meta.fields]
    actions = ["build_new_index", "activate_selected", "roll_back_to_selected"]

    def has_add_permission(self, request):
        return False  # versions are built, not typed in: use "Build a new index"

    def changelist_view(self, request, extra_context=None):
        # "Build a new index" needs no selection (there may be no version yet).
        if request.method == "POST" and request.POST.get("action") == "build_new_index":
            post = request.POST.copy()
            if not post.getlist(helpers.ACTION_CHECKBOX_NAME):
                post.setlist(helpers.ACTION_CHECKBOX_NAME, ["0"])
                request.POST = post
        return super().changelist_view(request, extra_context)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Build a new index from the published articles (activated when ready)")
    def build_new_index(self, request, queryset):
        try:
            version = indexing.start_build(user=request.user)
        except TrainingRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{version} is queued on the training queue.")

    def _one(self, request, queryset, verb: str):
        if queryset.count() != 1:
            messages.error(request, f"Select exactly one version to {verb}.")
            return None
        return queryset.get().pk

    @admin.action(description="Activate the selected index")
    def activate_selected(self, request, queryset):
        if (pk := self._one(request, queryset, "activate")) is None:
            return
        try:
            version = indexing.knowledge_indexes.activate(pk, user=request.user)
        except ActivationRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Activated {version}: the bot answers from it from the next message on.")

    @admin.action(description="Roll back to the selected index")
    def roll_back_to_selected(self, request, queryset):
        if (pk := self._one(request, queryset, "roll back to")) is None:
            return
        try:
            version = indexing.knowledge_indexes.roll_back(pk, user=request.user)
        except ActivationRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Rolled back to {version}.")

"""The help center in admin: articles with their passages, and an upload that imports
a zip, Markdown/HTML files or a CSV/JSONL FAQ all at once (or reports why not)."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from chatbot.knowledge import services
from chatbot.knowledge.models import Article, Passage


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
                return redirect("admin:knowledge_article_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import articles",
        }
        return TemplateResponse(request, "admin/knowledge/article/import.html", context)

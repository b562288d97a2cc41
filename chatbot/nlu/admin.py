from django.contrib import admin

from chatbot.nlu.models import Feedback, Intent, ModelVersion, Response, TrainingExample


class TrainingExampleInline(admin.TabularInline):
    model = TrainingExample
    extra = 1


class ResponseInline(admin.StackedInline):
    model = Response
    extra = 0


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "handoff"]
    search_fields = ["name", "description", "examples__text"]
    list_filter = ["handoff"]
    inlines = [ResponseInline, TrainingExampleInline]


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = ["text", "intent", "source", "created_at"]
    list_filter = ["source", "intent"]
    search_fields = ["text"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "mode", "status", "progress", "is_active", "example_count", "created_at"]
    list_filter = ["status", "is_active"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "source", "status", "predicted_intent", "confidence", "suggested_intent", "created_at"]
    list_filter = ["source", "status"]

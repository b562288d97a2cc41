"""The review inbox of misunderstood messages: thumbs down, agents' corrections,
fallbacks and low-confidence answers, turned into training examples or ignored."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from chatbot.nlu import explanations, services
from chatbot.nlu.models import Feedback, Intent
from chatbot.nlu.pii import mask_pii


class IntentChoice(forms.Form):
    intent = forms.ModelChoiceField(
        Intent.objects.all(), to_field_name="name", required=False, empty_label="(choose an intent)"
    )
    new_intent = forms.CharField(
        max_length=100, required=False, help_text="Or a new intent's name (letters, digits, _ or -)."
    )

    def clean(self):
        data = super().clean()
        chosen, named = bool(data.get("intent")), bool(data.get("new_intent", "").strip())
        if chosen and named:
            raise forms.ValidationError("Choose an existing intent or name a new one, not both.")
        if not (chosen or named or data.get("use_suggestions")):
            raise forms.ValidationError("Choose an existing intent or name a new one.")
        return data

    def label(self) -> tuple[str, bool] | None:
        """(intent name, whether it is new), or None when none was given."""
        if self.cleaned_data.get("intent"):
            return self.cleaned_data["intent"].name, False
        if self.cleaned_data.get("new_intent", "").strip():
            return self.cleaned_data["new_intent"].strip(), True
        return None


class ReviewForm(IntentChoice):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Personal data is masked again when saved: [email], [phone], [card], [order_id].",
    )


class BulkAcceptForm(IntentChoice):
    use_suggestions = forms.BooleanField(
        required=False,
        initial=True,
        label="Use each message's suggested label where it has one (the agent's correction first)",
    )


class PredictedIntentFilter(admin.SimpleListFilter):
    title = "predicted intent"
    parameter_name = "predicted"

    def lookups(self, request, model_admin):
        names = Feedback.objects.exclude(predicted_intent="").values_list("predicted_intent", flat=True)
        return [(name, name) for name in sorted(set(names))]

    def queryset(self, request, queryset):
        return queryset.filter(predicted_intent=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    """Pending by default: the inbox shows what still needs a reviewer."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Feedback.Status.choices, ("all", "All")]

    def choices(self, changelist):
        value = self.value() or Feedback.Status.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or Feedback.Status.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = [
        "message_text",
        "reasons",
        "predicted",
        "suggested",
        "conversation_link",
        "help_center",
        "created_at",
        "status",
        "review_link",
    ]
    list_filter = [StatusFilter, "source", PredictedIntentFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["message__text", "predicted_intent", "suggested_intent"]
    date_hierarchy = "created_at"
    list_select_related = ["message", "message__bot_reply"]
    actions = ["accept_selected", "ignore_selected"]
    readonly_fields = [f.name for f in Feedback._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        """One item per message (and status), every reason listed: a message that fell
        back and got a thumbs down is one item. A thumbs up is never something to review."""
        queryset = (
            super()
            .get_queryset(request)
            .exclude(source=Feedback.Source.THUMBS_UP)
            .annotate(conversation_id=F("message__conversation_id"))
        )
        if request.method != "GET":
            # An action applies to the items selected; accepting or ignoring one
            # settles every reason of its message (services.accept/ignore_feedback).
            return queryset
        to_review = Feedback.objects.exclude(source=Feedback.Source.THUMBS_UP)
        first_of_message = to_review.filter(message=OuterRef("message"), status=OuterRef("status")).order_by("pk")
        return queryset.filter(pk=Subquery(first_of_message.values("pk")[:1]))

    @admin.display(description="reasons")
    def reasons(self, feedback: Feedback) -> str:
        sources = (
            Feedback.objects.filter(message_id=feedback.message_id, status=feedback.status)
            .exclude(source=Feedback.Source.THUMBS_UP)
            .order_by("pk")
            .values_list("source", flat=True)
        )
        labels = dict(Feedback.Source.choices)
        return ", ".join(labels[source] for source in sources)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Review: messages the bot may have misunderstood"}
        return super().changelist_view(request, extra_context)

    @admin.display(description="message")
    def message_text(self, feedback: Feedback) -> str:
        text = feedback.message.text
        return text if len(text) <= 120 else text[:117] + "..."

    @admin.display(description="predicted (confidence)", ordering="confidence")
    def predicted(self, feedback: Feedback) -> str:
        if not feedback.predicted_intent:
            return "-"
        confidence = "" if feedback.confidence is None else f" ({feedback.confidence:.2f})"
        return f"{feedback.predicted_intent}{confidence}"

    @admin.display(description="suggested label")
    def suggested(self, feedback: Feedback) -> str:
        return services.suggested_label(feedback) or "-"

    @admin.display(description="help center (issue 16)")
    def help_center(self, feedback: Feedback) -> str:
        """What the knowledge base made of the message: the article it answered from, or
        the articles it considered when it abstained, with the score and threshold."""
        reply = getattr(feedback.message, "bot_reply", None)
        if reply is None or reply.knowledge_index_id is None:
            return "-"
        score = "" if reply.answer_score is None else f" (score {reply.answer_score:.2f})"
        if reply.answer_source == "article":
            vote = {True: ", voted helpful", False: ", voted not helpful"}.get(reply.helpful, "")
            return format_html("answered from “{}”{}{}", reply.citation.get("title", ""), score, vote)
        titles = format_html_join(", ", "“{}”", ((c.get("title", ""),) for c in reply.knowledge_considered[:3]))
        return format_html("abstained{}; considered {}", score, titles or "-")

    @admin.display(description="conversation")
    def conversation_link(self, feedback: Feedback) -> str:
        url = reverse("admin:conversations_conversation_change", args=[feedback.conversation_id])
        return format_html('<a href="{}">open</a>', url)

    @admin.display(description="")
    def review_link(self, feedback: Feedback) -> str:
        if feedback.status != Feedback.Status.PENDING:
            return ""
        return format_html(
            '<a class="button" href="{}">Review</a>', reverse("admin:nlu_feedback_review", args=[feedback.pk])
        )

    # --- Reviewing ----------------------------------------------------------------

    def _check_review_permission(self, request) -> None:
        if not (request.user.has_perm("nlu.change_feedback") and request.user.has_perm("nlu.add_trainingexample")):
            raise PermissionDenied

    def get_urls(self):
        return [
            path("<int:feedback_id>/review/", self.admin_site.admin_view(self.review_view), name="nlu_feedback_review"),
            *super().get_urls(),
        ]

    def review_view(self, request, feedback_id: int):
        self._check_review_permission(request)
        feedback = get_object_or_404(Feedback.objects.select_related("message__conversation"), pk=feedback_id)
        initial = {"text": mask_pii(feedback.message.text), "intent": services.suggested_label(feedback) or None}
        form = ReviewForm(request.POST or None, initial=initial)
        if request.method == "POST":
            if "ignore" in request.POST:
                services.ignore_feedback([feedback.pk], user=request.user)
                messages.success(request, "Ignored.")
                return redirect(self._next_url(feedback))
            if form.is_valid():
                name, new = form.label()
                try:
                    example = services.accept_feedback(
                        feedback.pk, name, user=request.user, text=form.cleaned_data["text"], create_intent=new
                    )
                except services.ReviewRefused as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(request, f"Added “{example.text}” as an example of {example.intent.name}.")
                    return redirect(self._next_url(feedback))
        transcript = feedback.message.conversation.messages.filter(
            seq__gte=feedback.message.seq - 3, seq__lte=feedback.message.seq + 2, internal=False
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Review a misunderstood message",
            "feedback": feedback,
            "form": form,
            "transcript": transcript,
            "why": explanations.for_page(feedback.message_id),
            "conversation_url": reverse(
                "admin:conversations_conversation_change", args=[feedback.message.conversation_id]
            ),
        }
        return TemplateResponse(request, "admin/nlu/feedback/review.html", context)

    def _next_url(self, feedback: Feedback) -> str:
        following = Feedback.objects.filter(status=Feedback.Status.PENDING).exclude(pk=feedback.pk).first()
        if following is not None:
            return reverse("admin:nlu_feedback_review", args=[following.pk])
        return reverse("admin:nlu_feedback_changelist")

    @admin.action(description="Accept selected as training examples…")
    def accept_selected(self, request, queryset):
        self._check_review_permission(request)
        pending = queryset.filter(status=Feedback.Status.PENDING)
        form = BulkAcceptForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            accepted, failures = 0, []
            for feedback in pending.select_related("message"):
                if form.cleaned_data.get("use_suggestions") and services.suggested_label(feedback):
                    name, new = services.suggested_label(feedback), False
                elif form.label() is not None:
                    name, new = form.label()
                else:
                    failures.append(f"#{feedback.pk} has no suggested label")
                    continue
                try:
                    services.accept_feedback(feedback.pk, name, user=request.user, create_intent=new)
                    accepted += 1
                except services.ReviewRefused as exc:
                    failures.append(f"#{feedback.pk}: {exc}")
            messages.success(request, f"Accepted {accepted} as training examples.")
            for failure in failures:
                messages.warning(request, f"Not accepted: {failure}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Accept as training examples",
            "form": form,
            "items": [
                (f, mask_pii(f.message.text), services.suggested_label(f)) for f in pending.select_related("message")
            ],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/nlu/feedback/accept_selected.html", context)

    @admin.action(description="Ignore selected")
    def ignore_selected(self, request, queryset):
        if not request.user.has_perm("nlu.change_feedback"):
            raise PermissionDenied
        count = services.ignore_feedback(queryset.values_list("pk", flat=True), user=request.user)
        messages.success(request, f"Ignored {count}.")

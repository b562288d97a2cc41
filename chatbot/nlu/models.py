"""What the bot knows (intents, examples, responses) and the models trained on it."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from chatbot.modelops.models import VersionBase


class Intent(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    # Reserved for "talk to a human": predicting it hands off at once.
    handoff = models.BooleanField(default=False)
    # Help-center articles that answer it instead of a canned text (issue 16): the bot
    # replies with their citation cards. By name: knowledge sits beside nlu.
    articles = models.ManyToManyField(
        "knowledge.Article",
        blank=True,
        related_name="intents",
        help_text="Answer with these articles' citation cards instead of a response text (published ones only).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrainingExample(models.Model):
    class Source(models.TextChoices):
        DEMO = "demo"
        IMPORT = "import"
        ADMIN = "admin"
        FEEDBACK = "feedback"

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="examples")
    # One text, one label: the same text under two intents would teach nothing.
    text = models.CharField(max_length=2000, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.ADMIN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["intent__name", "id"]

    def __str__(self) -> str:
        return self.text


class Response(models.Model):
    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    quick_replies = models.JSONField(default=list, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["intent__name", "position", "id"]

    def __str__(self) -> str:
        return self.text[:60]


class ModelVersion(VersionBase):
    """One trained intent model: its artifact directory and how it came to be.
    Its lifecycle (chatbot.modelops) is shared with every other model kind."""

    mode = models.CharField(max_length=10, default="fast")
    model_id = models.CharField(max_length=64, blank=True)
    data_hash = models.CharField(max_length=64, blank=True)
    example_count = models.PositiveIntegerField(default=0)

    class Meta(VersionBase.Meta):
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
            models.UniqueConstraint(fields=["busy"], condition=Q(busy=True), name="one_training_at_a_time"),
        ]
        permissions = [
            ("train_model", "Can start training a new model version"),
            ("activate_model", "Can activate or roll back a model version"),
        ]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.status})"


class Feedback(models.Model):
    """A message the model may have got wrong, waiting for a reviewer."""

    class Source(models.TextChoices):
        THUMBS_DOWN = "thumbs_down"
        THUMBS_UP = "thumbs_up"
        CORRECTION = "correction"
        FALLBACK = "fallback"
        LOW_CONFIDENCE = "low_confidence"

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        IGNORED = "ignored"

    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="feedback")
    source = models.CharField(max_length=20, choices=Source.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    predicted_intent = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    suggested_intent = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The example an accepted feedback became (its text masked for PII).
    training_example = models.ForeignKey(
        TrainingExample, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["message", "source"], name="one_feedback_per_source"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.source} on message {self.message_id}"


class ExplanationBase(models.Model):
    """What every cached explanation has: computed once by a task on the inference
    queue, then kept."""

    class Status(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    data = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Explanation(ExplanationBase):
    """Why one visitor message got its intent ("Why this answer"), as the model
    version that answered it sees it: computed once by a task on the inference
    queue, kept per (message, model version)."""

    # The message model by name: conversations calls into nlu, not the other way round.
    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="explanations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="explanations")
    # data: inference.intents.explain.Explanation.to_dict(), its neighbours with their example ids.

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "model_version"], name="one_explanation_per_message_and_version"
            ),
        ]

    def __str__(self) -> str:
        return f"explanation of message {self.message_id} by v{self.model_version_id} ({self.status})"


class KnowledgeExplanation(ExplanationBase):
    """Why the knowledge base answered a visitor message, or declined to (the passages
    weighed, their scores, the threshold, the chosen sentences), as the index version
    that was asked sees it; kept per (message, index version)."""

    message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, related_name="knowledge_explanations"
    )
    index_version = models.ForeignKey(
        "knowledge.KnowledgeIndexVersion", on_delete=models.CASCADE, related_name="explanations"
    )
    # data: inference.knowledge.explain_answer().

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "index_version"], name="one_knowledge_explanation_per_message_and_index"
            ),
        ]

    def __str__(self) -> str:
        return f"knowledge explanation of message {self.message_id} by index v{self.index_version_id} ({self.status})"

"""Help-center articles and the passages the knowledge index is built from."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q

from chatbot.modelops.models import VersionBase
from inference.knowledge.passages import Article as IndexArticle
from inference.knowledge.passages import split_article


class Article(models.Model):
    # The file name an article was imported from (or the FAQ's id): re-importing
    # the same file updates the article instead of adding a second one.
    slug = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    body = models.TextField(help_text="Markdown")
    url = models.URLField(max_length=500, blank=True, help_text="Public address of the article (http or https)")
    locale = models.CharField(max_length=16, default="en")
    keywords = models.CharField(
        max_length=1000, blank=True, help_text="Words customers use that the text may not; searched, never shown"
    )
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["locale", "slug"]
        constraints = [models.UniqueConstraint(fields=["slug", "locale"], name="knowledge_article_slug_locale")]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # Passages always match the body they came from: both change in one transaction.
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.split_into_passages()

    def as_index_article(self) -> IndexArticle:
        """The plain-Python article that inference.knowledge indexes."""
        return IndexArticle(
            id=self.slug, title=self.title, body=self.body, url=self.url, locale=self.locale, keywords=self.keywords
        )

    def split_into_passages(self) -> None:
        self.passages.all().delete()
        Passage.objects.bulk_create(
            Passage(article=self, position=p.position, heading=p.heading, text=p.text)
            for p in split_article(self.as_index_article())
        )


class Passage(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="passages")
    position = models.PositiveIntegerField()
    heading = models.CharField(max_length=300, blank=True)
    text = models.TextField()

    class Meta:
        ordering = ["article", "position"]
        constraints = [
            models.UniqueConstraint(fields=["article", "position"], name="knowledge_passage_article_position")
        ]

    def __str__(self) -> str:
        return f"{self.article.title} #{self.position}"


class KnowledgeIndexVersion(VersionBase):
    """One built knowledge index (chatbot.knowledge.indexing.KnowledgeIndexes is its kind)."""

    # The artifact's id (a hash of its checksums): what answers record as the index version.
    index_id = models.CharField(max_length=64, blank=True)
    article_count = models.PositiveIntegerField(default=0)
    passage_count = models.PositiveIntegerField(default=0)
    # sha256 of the published articles it was built from: an unchanged help center is not rebuilt.
    articles_sha256 = models.CharField(max_length=64, blank=True)

    class Meta(VersionBase.Meta):
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_index"),
            models.UniqueConstraint(fields=["busy"], condition=Q(busy=True), name="one_index_build_at_a_time"),
        ]

    def __str__(self) -> str:
        return f"Knowledge index v{self.pk}"

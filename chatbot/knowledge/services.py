"""Importing and exporting the help center. An import reads every file first and
writes only if all of them are good, in one transaction; a bad file is reported
by name and reason and nothing is half-imported."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml
from django.db import transaction

from chatbot.knowledge.models import Article, Passage
from inference.knowledge import Article as IndexArticle
from inference.knowledge import KnowledgeDataError, answer_from_passages
from inference.knowledge import Passage as IndexPassage
from inference.knowledge.sources import (
    FAQ_SUFFIXES,
    HTML_SUFFIXES,
    MARKDOWN_SUFFIXES,
    article_from_file,
    faq_articles,
)

DEMO_HELP_CENTER = Path(__file__).resolve().parent / "demo" / "help_center"
ARTICLE_SUFFIXES = MARKDOWN_SUFFIXES + HTML_SUFFIXES
MAX_FILE_BYTES = 5 * 2**20
MAX_ARCHIVE_BYTES = 100 * 2**20  # uncompressed, all entries together
MAX_ARCHIVE_FILES = 5000
TITLE_MAX = Article._meta.get_field("title").max_length
URL_MAX = Article._meta.get_field("url").max_length
SLUG_MAX = Article._meta.get_field("slug").max_length


class ImportFailed(Exception):
    """Some files could not be imported; nothing was written."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems))


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are not articles (images, ...)

    def __str__(self) -> str:
        text = f"{len(self.created)} articles created, {len(self.updated)} updated"
        return text + (f", {len(self.skipped)} other files skipped" if self.skipped else "")


def _strip_message(name: str, exc: KnowledgeDataError) -> str:
    message = str(exc)
    for prefix in (f"{name}: ", f"{name} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _check(name: str, article: IndexArticle) -> None:
    if len(article.title) > TITLE_MAX:
        raise KnowledgeDataError(f"{name}: the title is longer than {TITLE_MAX} characters")
    if len(article.url) > URL_MAX:
        raise KnowledgeDataError(f"{name}: the url is longer than {URL_MAX} characters")
    if not article.id or len(article.id) > SLUG_MAX:
        raise KnowledgeDataError(f"{name}: the article id must be 1 to {SLUG_MAX} characters")


def read_file(name: str, data: bytes) -> list[IndexArticle]:
    """Articles in one file: Markdown or HTML (one article, id = file name without
    suffix), a CSV/JSONL FAQ (one article per entry). Raises KnowledgeDataError."""
    suffix = PurePosixPath(name).suffix.lower()
    if len(data) > MAX_FILE_BYTES:
        raise KnowledgeDataError(f"{name}: larger than {MAX_FILE_BYTES // 2**20} MB")
    if suffix in ARTICLE_SUFFIXES:
        articles = [article_from_file(name, data)]
    elif suffix in FAQ_SUFFIXES:
        articles = faq_articles(name, data)
    else:
        raise KnowledgeDataError(f"{name}: not a Markdown, HTML, CSV or JSONL file")
    for article in articles:
        _check(name, article)
    return articles


def _zip_entries(name: str, data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise KnowledgeDataError(f"{name}: not a valid zip archive") from None
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_ARCHIVE_FILES:
        raise KnowledgeDataError(f"{name}: more than {MAX_ARCHIVE_FILES} files")
    if sum(i.file_size for i in infos) > MAX_ARCHIVE_BYTES:
        raise KnowledgeDataError(f"{name}: more than {MAX_ARCHIVE_BYTES // 2**20} MB once unpacked")
    entries = []
    for info in infos:
        if info.file_size > MAX_FILE_BYTES:
            raise KnowledgeDataError(f"{name}/{info.filename}: larger than {MAX_FILE_BYTES // 2**20} MB")
        entries.append((f"{name}/{info.filename}", archive.read(info)))
    return entries


def collect(
    sources: list[tuple[str, bytes]],
) -> tuple[list[tuple[str, IndexArticle]], list[tuple[str, str]], list[str]]:
    """Parse every source (a zip is opened): (articles with their file, problems, skipped)."""
    articles: list[tuple[str, IndexArticle]] = []
    problems: list[tuple[str, str]] = []
    skipped: list[str] = []
    queue = list(sources)
    while queue:
        name, data = queue.pop(0)
        parts = PurePosixPath(name).parts
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue  # hidden files and macOS resource forks
        suffix = PurePosixPath(name).suffix.lower()
        try:
            if suffix == ".zip":
                queue.extend(_zip_entries(name, data))
            elif suffix in ARTICLE_SUFFIXES + FAQ_SUFFIXES:
                articles.extend((name, a) for a in read_file(name, data))
            else:
                skipped.append(name)
        except KnowledgeDataError as exc:
            problems.append((name, _strip_message(name, exc)))
    seen: dict[tuple[str, str], str] = {}
    for name, article in articles:
        key = (article.id, article.locale)
        if key in seen:
            problems.append((name, f"article id {article.id!r} ({article.locale}) is also in {seen[key]}"))
        seen.setdefault(key, name)
    return articles, problems, skipped


def read_path(path: Path) -> list[tuple[str, bytes]]:
    """A folder (read recursively), a zip, or one file, as (name, bytes) sources."""
    path = Path(path)
    if path.is_dir():
        return [(p.relative_to(path).as_posix(), p.read_bytes()) for p in sorted(path.rglob("*")) if p.is_file()]
    if path.is_file():
        return [(path.name, path.read_bytes())]
    raise ImportFailed([(str(path), "no such file or folder")])


def import_articles(sources: list[tuple[str, bytes]], publish: bool = True) -> ImportReport:
    """Create or update (by id and locale) every article in the sources, all or none."""
    articles, problems, skipped = collect(sources)
    if problems:
        raise ImportFailed(problems)
    if not articles:
        raise ImportFailed([("import", "no articles found (expected .md, .html, .csv, .jsonl or a .zip of them)")])
    report = ImportReport(skipped=skipped)
    with transaction.atomic():
        for _, a in articles:
            _, created = Article.objects.update_or_create(
                slug=a.id,
                locale=a.locale,
                defaults={"title": a.title, "body": a.body, "url": a.url, "keywords": a.keywords, "published": publish},
            )
            (report.created if created else report.updated).append(a.id)
    return report


def article_markdown(article: Article) -> str:
    """The article as a Markdown file with front matter; importing it gives it back."""
    meta = {"title": article.title, "url": article.url, "locale": article.locale, "published": article.published}
    if article.keywords:
        meta["keywords"] = article.keywords
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n{article.body.strip()}\n"


def export_articles(out_dir: Path, articles=None) -> list[Path]:
    """Write one <id>.md per article (under <locale>/ when not English)."""
    out_dir = Path(out_dir)
    written = []
    for article in articles if articles is not None else Article.objects.all():
        folder = out_dir if article.locale == "en" else out_dir / article.locale
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{article.slug}.md"
        path.write_text(article_markdown(article), encoding="utf-8")
        written.append(path)
    return written


def published_articles(locale: str | None = None) -> list[IndexArticle]:
    """What the knowledge index is built from (the seam for the index-building task)."""
    qs = Article.objects.filter(published=True)
    if locale:
        qs = qs.filter(locale=locale)
    return [a.as_index_article() for a in qs.order_by("locale", "slug")]


def import_demo_help_center() -> ImportReport | None:
    """The demo store's help center, on a first run only (None when articles exist)."""
    if Article.objects.exists():
        return None
    return import_articles(read_path(DEMO_HELP_CENTER))


def learning_pairs() -> list[tuple[str, str]]:
    """(question, article id) pairs for fine-tuning the encoder: the visitor's question
    and the article of a knowledge answer voted helpful, then the visitor's last message
    before an agent's reply that sent a published article's address (the dashboard's
    "Insert link")."""
    from django.apps import apps
    from django.db.models import OuterRef, Subquery

    message = apps.get_model("conversations", "Message")  # by name: conversations sits above this app
    rows = message.objects.filter(answer_source="article", helpful=True, reply_to__isnull=False)
    pairs = [
        (text, citation.get("article_id", "")) for text, citation in rows.values_list("reply_to__text", "citation")
    ]
    asked_before = message.objects.filter(
        conversation=OuterRef("conversation"), sender="visitor", seq__lt=OuterRef("seq")
    ).order_by("-seq")
    for slug, url in Article.objects.filter(published=True).exclude(url="").values_list("slug", "url"):
        sent = message.objects.filter(sender="agent", text__contains=url).order_by("pk")
        whole = re.compile(re.escape(url) + r"(?![\w/.-])")  # not the start of a longer address
        rows = sent.annotate(question=Subquery(asked_before.values("text")[:1])).values_list("question", "text")
        pairs.extend((question, slug) for question, text in rows if question and whole.search(text))
    return pairs


# --- An intent linked to articles (issue 16: "an intent may link to articles instead of a canned text") ---


@dataclass(frozen=True)
class LinkedAnswer:
    text: str  # the linked passage's most relevant sentences, verbatim
    citation: dict  # the answering article, with every linked article under "articles"


def citation_of(article: Article) -> dict:
    return {"article_id": article.slug, "title": article.title, "url": article.url}


def answer_from_linked_articles(question: str, articles, intent: str = "") -> LinkedAnswer | None:
    """The answer to an intent that links to articles: the sentences of their passages
    that fit the visitor's question best, cited; one card per article (the answering
    one first). None when they have no text (the intent's responses answer then)."""
    articles = [a for a in articles if a.published]
    passages = list(
        Passage.objects.filter(article__in=articles).select_related("article").order_by("article_id", "position")
    )
    if not passages:
        return None
    rank = {a.pk: i for i, a in enumerate(articles)}
    passages.sort(key=lambda p: (rank[p.article_id], p.position))
    search_texts = [
        IndexPassage(
            article_id=p.article.slug,
            title=p.article.title,
            url=p.article.url,
            heading=p.heading,
            text=p.text,
            keywords=p.article.keywords,
        ).search_text
        for p in passages
    ]
    row, text = answer_from_passages(question, list(zip(search_texts, [p.text for p in passages], strict=True)))
    answering = passages[row].article
    ordered = [answering, *(a for a in articles if a.pk != answering.pk)]
    citation = {**citation_of(answering), "intent": intent, "articles": [citation_of(a) for a in ordered]}
    return LinkedAnswer(text=text, citation=citation)

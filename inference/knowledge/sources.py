"""Reading a help center and labelled questions from files: a folder of Markdown
(or HTML) articles with front matter, a CSV/JSONL FAQ, a CSV of questions.
Bad input raises KnowledgeDataError naming the file (and line) and the reason."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import nh3
import yaml
from markdownify import markdownify

from .passages import Article

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
FAQ_SUFFIXES = (".csv", ".jsonl")
# What survives sanitising: text structure and links, nothing that runs or styles.
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol",
    "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


class KnowledgeDataError(ValueError):
    """A help-center or question file cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Question:
    text: str
    article_id: str  # "" when the help center does not answer it


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes=ALLOWED_URL_SCHEMES,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript", "template"},
        link_rel="noopener noreferrer nofollow",
    )


def html_to_markdown(html: str) -> tuple[str, str]:
    """(title, Markdown body) of an HTML page, sanitised first with nh3. The title is
    the page's <title> or first <h1>, "" when it has neither."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = ""
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(strip=True)
    elif soup.find("h1"):
        title = soup.find("h1").get_text(strip=True)
    body = soup.body.decode_contents() if soup.body else html
    markdown = markdownify(sanitize_html(body), heading_style="ATX", bullets="-").strip()
    return title, markdown


def split_front_matter(text: str, name: str) -> tuple[dict, str]:
    """YAML between leading '---' lines, and the rest."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:i])) or {}
            except yaml.YAMLError as exc:
                raise KnowledgeDataError(f"{name}: front matter is not valid YAML ({exc})") from None
            if not isinstance(meta, dict):
                raise KnowledgeDataError(f"{name}: front matter must be key: value lines")
            return meta, "\n".join(lines[i + 1 :])
    raise KnowledgeDataError(f"{name}: front matter opened with '---' is never closed")


def _first_heading(markdown: str) -> str:
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def article_from_file(name: str, raw: bytes) -> Article:
    """One article from a Markdown or HTML file; its id is the file name without suffix."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeDataError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise KnowledgeDataError(f"{name}: binary data, not text")
    suffix = Path(name).suffix.lower()
    stem = Path(name).stem
    meta, body = split_front_matter(text, name)
    if suffix in HTML_SUFFIXES:
        html_title, body = html_to_markdown(body)
        meta.setdefault("title", html_title)
    title = str(meta.get("title") or _first_heading(body)).strip()
    if not title:
        raise KnowledgeDataError(f"{name}: no title (add 'title:' front matter or a '# ' heading)")
    url = str(meta.get("url") or "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise KnowledgeDataError(f"{name}: url must start with http:// or https://, got {url!r}")
    if not body.strip():
        raise KnowledgeDataError(f"{name}: the article has no text")
    keywords = meta.get("keywords") or ""
    if isinstance(keywords, list):
        keywords = ", ".join(str(k) for k in keywords)
    return Article(
        id=str(meta.get("id") or stem),
        title=title,
        body=body.strip(),
        url=url,
        locale=str(meta.get("locale") or "en"),
        keywords=str(keywords).strip(),
    )


def _faq_rows(name: str, text: str) -> list[tuple[int, dict]]:
    if name.lower().endswith(".jsonl"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KnowledgeDataError(f"{name} line {n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise KnowledgeDataError(f"{name} line {n}: expected an object with question and answer")
            rows.append((n, row))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"question", "answer"} <= {f.strip() for f in reader.fieldnames}:
        raise KnowledgeDataError(f"{name}: the CSV needs a header with question,answer[,url][,id]")
    return [(reader.line_num, {k.strip(): v for k, v in row.items() if k}) for row in reader]


def faq_articles(name: str, raw: bytes) -> list[Article]:
    """A FAQ (CSV or JSONL with question, answer, optional url and id): each entry is
    one article titled by its question. Its id is the id column, else its row number
    counting from 1."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeDataError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    articles = []
    for number, (line, row) in enumerate(_faq_rows(name, text), 1):
        question = str(row.get("question") or "").strip()
        answer = str(row.get("answer") or "").strip()
        if not question or not answer:
            raise KnowledgeDataError(f"{name} line {line}: question and answer must both be filled in")
        url = str(row.get("url") or "").strip()
        if url and not url.startswith(("http://", "https://")):
            raise KnowledgeDataError(f"{name} line {line}: url must start with http:// or https://")
        article_id = str(row.get("id") or number).strip()
        articles.append(
            Article(id=article_id, title=question, body=answer, url=url, locale=str(row.get("locale") or "en"))
        )
    if not articles:
        raise KnowledgeDataError(f"{name}: the FAQ has no entries")
    return articles


def load_articles(path: str | Path) -> list[Article]:
    """Articles from a folder of .md/.html files (file name = article id) or a FAQ file."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in FAQ_SUFFIXES:
            raise KnowledgeDataError(f"{path}: expected a folder of articles or a .csv/.jsonl FAQ")
        return faq_articles(str(path), path.read_bytes())
    if not path.is_dir():
        raise KnowledgeDataError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MARKDOWN_SUFFIXES + HTML_SUFFIXES)
    if not files:
        raise KnowledgeDataError(f"{path}: no .md or .html articles in this folder")
    articles = [article_from_file(str(p.relative_to(path)), p.read_bytes()) for p in files]
    seen: dict[str, str] = {}
    for a, p in zip(articles, files, strict=True):
        if a.id in seen:
            raise KnowledgeDataError(f"{p}: article id {a.id!r} is also used by {seen[a.id]}")
        seen[a.id] = str(p)
    return articles


def load_questions(path: str | Path, article_ids: set[str] | None = None) -> list[Question]:
    """CSV question,article_id (a header row is optional); an empty article_id marks
    a question the help center should not answer."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise KnowledgeDataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise KnowledgeDataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    questions = []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        if not row or not any(c.strip() for c in row):
            continue
        if line == 1 and [c.strip().lower() for c in row[:2]] == ["question", "article_id"]:
            continue
        if len(row) > 2:
            raise KnowledgeDataError(f"{path} line {line}: expected 2 columns (question,article_id), got {len(row)}")
        question = row[0].strip()
        article_id = row[1].strip() if len(row) > 1 else ""
        if not question:
            raise KnowledgeDataError(f"{path} line {line}: the question is empty")
        if article_ids is not None and article_id and article_id not in article_ids:
            raise KnowledgeDataError(f"{path} line {line}: article_id {article_id!r} is not in the help center")
        questions.append(Question(question, article_id))
    if not questions:
        raise KnowledgeDataError(f"{path}: no questions")
    return questions

"""Help-center articles cut into passages: by headings, then paragraphs, packed to
about 60-200 words, each passage keeping its article's title and section heading."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

# Sentence ends: . ! ? followed by space and a capital, digit or quote. A URL or
# "NW-123456." inside a sentence has no space after its dots, so it is not cut.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Article:
    """One help-center article as the index sees it: plain Python, no database."""

    id: str
    title: str
    body: str  # Markdown
    url: str = ""
    locale: str = "en"
    # Words customers use that the text may not (search labels, as in Zendesk):
    # indexed with every passage of the article, never shown.
    keywords: str = ""


@dataclass(frozen=True)
class Passage:
    article_id: str
    title: str
    url: str
    heading: str  # "" for the text before the first heading
    text: str  # plain text, Markdown removed
    position: int = 0  # order within the article
    locale: str = "en"
    keywords: str = ""

    @property
    def search_text(self) -> str:
        """What is indexed: the title, heading and keywords carry words the body leaves out."""
        head = f"{self.title}. {self.heading}." if self.heading and self.heading != self.title else f"{self.title}."
        if self.keywords:
            head += f" {self.keywords}."
        return f"{head} {self.text}"

    def to_dict(self) -> dict:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "url": self.url,
            "heading": self.heading,
            "text": self.text,
            "position": self.position,
            "locale": self.locale,
            "keywords": self.keywords,
        }


@dataclass
class _Section:
    heading: str
    blocks: list[str] = field(default_factory=list)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _inline_text(token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return _SPACE.sub(" ", "".join(parts)).strip()


def _with_stop(text: str) -> str:
    return text if not text or text[-1] in ".!?:;" else text + "."


def markdown_sections(body: str) -> list[_Section]:
    """Top-level blocks of a Markdown body grouped under their headings. A list or a
    table is one block (its items as sentences), so a passage never cuts one."""
    sections = [_Section(heading="")]
    tokens = _markdown().parse(body or "")
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            sections.append(_Section(heading=_inline_text(tokens[i + 1])))
            i += 3
            continue
        if tok.type in ("fence", "code_block"):
            text = _SPACE.sub(" ", tok.content).strip()
            if text:
                sections[-1].blocks.append(text)
            i += 1
            continue
        if tok.nesting == 1 and tok.level == 0:
            # A container (paragraph, list, table, quote): gather its inline text.
            depth, parts, j = 0, [], i
            while j < len(tokens):
                t = tokens[j]
                depth += t.nesting
                if t.type == "inline":
                    parts.append(_with_stop(_inline_text(t)))
                j += 1
                if depth == 0:
                    break
            text = " ".join(p for p in parts if p)
            if text:
                sections[-1].blocks.append(text)
            i = j
            continue
        i += 1
    return [s for s in sections if s.blocks]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _words(text: str) -> int:
    return len(text.split())


def _cut_long_block(block: str, max_words: int) -> list[str]:
    """A paragraph over max_words is cut between sentences (a sentence over it, by words)."""
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    for sentence in split_sentences(block):
        n = _words(sentence)
        if n > max_words:
            words = sentence.split()
            chunks = [" ".join(words[k : k + max_words]) for k in range(0, len(words), max_words)]
        else:
            chunks = [sentence]
        for chunk in chunks:
            n = _words(chunk)
            if current and count + n > max_words:
                pieces.append(" ".join(current))
                current, count = [], 0
            current.append(chunk)
            count += n
    if current:
        pieces.append(" ".join(current))
    return pieces


def split_article(article: Article, min_words: int = 60, max_words: int = 200) -> list[Passage]:
    """Passages of one article. Each heading starts a new passage and a section's
    paragraphs are packed up to max_words. Then a passage under min_words joins the
    next one (whose heading it keeps as a sentence), or else the one before, as long
    as the joined text stays within max_words."""
    chunks: list[list[str]] = []  # [heading, text]
    for section in markdown_sections(article.body):
        current = ""
        for block in section.blocks:
            for piece in _cut_long_block(block, max_words) if _words(block) > max_words else [block]:
                if current and _words(current) + _words(piece) > max_words:
                    chunks.append([section.heading, current])
                    current = ""
                current = f"{current} {piece}".strip()
        if current:
            chunks.append([section.heading, current])

    merged: list[list[str]] = []
    i = 0
    while i < len(chunks):
        heading, text = chunks[i]
        while _words(text) < min_words and i + 1 < len(chunks):
            next_heading, next_text = chunks[i + 1]
            joined = (
                f"{text} {_with_stop(next_heading)} {next_text}" if next_heading != heading else f"{text} {next_text}"
            )
            if _words(joined) > max_words:
                break
            text, i = joined.replace("  ", " "), i + 1
        if merged and _words(text) < min_words and _words(merged[-1][1]) + _words(text) <= max_words:
            prefix = f"{_with_stop(heading)} " if heading and heading != merged[-1][0] else ""
            merged[-1][1] += f" {prefix}{text}"
        else:
            merged.append([heading, text])
        i += 1
    if not merged and article.title.strip():
        merged = [["", _with_stop(article.title.strip())]]
    return [
        Passage(
            article_id=article.id,
            title=article.title,
            url=article.url,
            heading=heading,
            text=text,
            position=position,
            locale=article.locale,
            keywords=article.keywords,
        )
        for position, (heading, text) in enumerate(merged)
    ]

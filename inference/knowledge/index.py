"""The knowledge index: BM25 (bm25s) and dense MiniLM vectors over every passage,
fused into one ranking, with an extracted answer and a score to abstain on."""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bm25s
import numpy as np

from inference.artifact import ArtifactError, write_atomically, write_json
from inference.encoder import SentenceEncoder, model_fingerprint

from .answer import extract_answer
from .artifact import (
    ARTICLES_FILE,
    BM25_DIR,
    CONFIG_FILE,
    ENCODER_DIR,
    PASSAGE_ARTICLE_FILE,
    PASSAGE_OFFSETS_FILE,
    PASSAGES_FILE,
    SCALES_FILE,
    VECTORS_FILE,
    articles_fingerprint,
    verify,
)
from .config import FORMAT_1_THRESHOLD, IndexConfig, KnowledgeConfig
from .passages import Article, Passage, split_article
from .store import PassageStore, write_passages
from .text import terms

_CHUNK_ROWS = 1024  # int8 rows turned into float32 at a time: stays in cache


@dataclass(frozen=True)
class Hit:
    """One article in the ranking, represented by its best passage."""

    article_id: str
    title: str
    url: str
    passage: int  # row of the passage in the index
    fused: float
    dense: float  # cosine of question and passage
    bm25: float


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    score: float  # the abstention score; compared with threshold
    threshold: float
    text: str  # the passage's most relevant 1-3 sentences ("" when abstaining)
    article_id: str
    title: str
    url: str
    heading: str
    hits: list[Hit] = field(default_factory=list)  # the articles considered, best first
    features: dict[str, float] = field(default_factory=dict)  # what the score was computed from

    @property
    def citation(self) -> dict[str, str]:
        return {"article_id": self.article_id, "title": self.title, "url": self.url}


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: (rows int8, scales float32); row ~= int8 * scale."""
    peak = np.abs(vectors).max(axis=1, keepdims=True)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)  # (n, 1)
    rows = np.clip(np.rint(vectors / scales), -127, 127).astype(np.int8)
    return rows, scales[:, 0]


class KnowledgeIndex:
    def __init__(
        self,
        config: KnowledgeConfig,
        encoder: SentenceEncoder,
        bm25: bm25s.BM25,
        vectors: np.ndarray,
        scales: np.ndarray | None,
        passages: Sequence[Passage] | PassageStore,
        passage_article: np.ndarray,
        articles: list[dict[str, str]],
        index_id: str = "",
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.bm25 = bm25
        self.vectors = vectors  # (passages, hidden) int8 or float32
        self.scales = scales  # (passages,) float32 for int8 vectors
        self.passages = passages
        self.passage_article = passage_article  # (passages,) int32 row in articles
        self.articles = articles  # [{"id", "title", "url"}]
        self.index_id = index_id
        # Inverse document frequency per BM25 term: picks answer sentences.
        df = np.diff(np.asarray(bm25.scores["indptr"])).astype(np.float32)
        n = max(len(passage_article), 1)
        self._idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self._buffer = np.empty((_CHUNK_ROWS, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)

    # ---- building -----------------------------------------------------------------

    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        config: KnowledgeConfig | None = None,
        encoder: SentenceEncoder | None = None,
        dense: np.ndarray | None = None,
    ) -> KnowledgeIndex:
        """Split, index and embed the articles. `dense` may hold the passages'
        vectors already computed with this encoder (benchmarks reuse them)."""
        config = config or KnowledgeConfig()
        config.validate()
        from inference.runtime import apply_torch_threads

        apply_torch_threads(config.threads)
        if encoder is None:
            encoder = SentenceEncoder(config.base_model, device=config.device, max_length=config.max_length)
        else:
            config.max_length = encoder.tokenizer.max_length  # the index records what it used
        passages: list[Passage] = []
        order = {}
        for article in articles:
            if article.id in order:
                raise ValueError(f"article id {article.id!r} appears twice")
            order[article.id] = len(order)
            passages.extend(split_article(article, config.min_words, config.max_words))
        if not passages:
            raise ValueError("no passages: the articles are empty")
        texts = [p.search_text for p in passages]
        bm25 = bm25s.BM25(k1=config.bm25_k1, b=config.bm25_b)
        bm25.index([terms(t) or ["<empty>"] for t in texts], show_progress=False)
        if dense is None:
            dense = encoder.encode(texts, batch_size=config.batch_size)  # (passages, hidden)
        elif dense.shape != (len(passages), encoder.dimension):
            raise ValueError(f"dense vectors have shape {dense.shape}, expected {(len(passages), encoder.dimension)}")
        if config.vector_dtype == "int8":
            vectors, scales = quantize(dense)
        else:
            vectors, scales = dense, None
        table = [{"id": a.id, "title": a.title, "url": a.url} for a in articles]
        passage_article = np.array([order[p.article_id] for p in passages], dtype=np.int32)
        index = cls(config, encoder, bm25, vectors, scales, passages, passage_article, table)
        index._articles_sha256 = articles_fingerprint(articles)
        return index

    def save(self, out_dir: str | Path) -> Path:
        """Write the index as a checksummed directory, atomically; returns its path."""

        def build(tmp: Path) -> None:
            self.bm25.save(str(tmp / BM25_DIR), show_progress=False)
            np.save(tmp / VECTORS_FILE, self.vectors, allow_pickle=False)
            if self.scales is not None:
                np.save(tmp / SCALES_FILE, self.scales, allow_pickle=False)
            np.save(tmp / PASSAGE_ARTICLE_FILE, self.passage_article, allow_pickle=False)
            starts = write_passages(tmp / PASSAGES_FILE, [self.passages[i] for i in range(len(self.passage_article))])
            np.save(tmp / PASSAGE_OFFSETS_FILE, starts, allow_pickle=False)
            write_json(tmp / ARTICLES_FILE, self.articles)
            if self.config.own_encoder:  # a fine-tuned encoder travels with its vectors
                shutil.copytree(self.encoder.model_dir, tmp / ENCODER_DIR)
            write_json(tmp / CONFIG_FILE, self.index_config().to_dict())

        path = write_atomically(Path(out_dir), build)
        _, self.index_id = verify(path)
        return path

    def index_config(self) -> IndexConfig:
        import torch
        import transformers

        return IndexConfig(
            settings=self.config.to_dict(),
            base_model=str(self.encoder.model_dir),
            base_model_sha256=model_fingerprint(self.encoder.model_dir),
            hidden_size=int(self.vectors.shape[1]),
            passages=len(self.passage_article),
            articles=len(self.articles),
            articles_sha256=getattr(self, "_articles_sha256", ""),
            versions={
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "bm25s": bm25s.__version__,
                "numpy": np.__version__,
            },
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    @classmethod
    def load(cls, path: str | Path, encoder: SentenceEncoder | None = None, mmap: bool = True) -> KnowledgeIndex:
        """Verify every checksum, then load. With mmap the BM25 matrix and passage
        texts stay on disk and only the pages a question touches are read."""
        path = Path(path)
        saved, index_id = verify(path)
        config = saved.knowledge
        if saved.format_version < 2:
            config = dataclasses.replace(
                config,
                threshold=FORMAT_1_THRESHOLD,
                threshold_rule="built before the fitted score (format 1): the default weights' threshold; rebuild to fit both",
            )
        own = path / ENCODER_DIR
        if own.is_dir() and (encoder is None or model_fingerprint(encoder.model_dir) != saved.base_model_sha256):
            from inference.runtime import apply_torch_threads

            apply_torch_threads(config.threads)
            encoder = SentenceEncoder(str(own), device=config.device, max_length=config.max_length)
        elif encoder is None:
            from inference.runtime import apply_torch_threads

            apply_torch_threads(config.threads)
            encoder = SentenceEncoder(config.base_model, device=config.device, max_length=config.max_length)
        if model_fingerprint(encoder.model_dir) != saved.base_model_sha256:
            raise ArtifactError(
                f"{path} was built with another encoder ({saved.base_model}); its vectors would not match the questions"
            )
        bm25 = bm25s.BM25.load(str(path / BM25_DIR), mmap=mmap, show_progress=False, verbosity=0)
        vectors = np.load(path / VECTORS_FILE, allow_pickle=False)
        scales = np.load(path / SCALES_FILE, allow_pickle=False) if (path / SCALES_FILE).is_file() else None
        passage_article = np.load(path / PASSAGE_ARTICLE_FILE, allow_pickle=False)
        articles = json.loads((path / ARTICLES_FILE).read_text(encoding="utf-8"))
        try:
            store = PassageStore(path / PASSAGES_FILE, np.load(path / PASSAGE_OFFSETS_FILE, allow_pickle=False))
        except ValueError as exc:
            raise ArtifactError(f"{path} is damaged: {exc}") from None
        if len(store) != len(passage_article) or vectors.shape[0] != len(passage_article):
            raise ArtifactError(f"{path} is damaged: passages, vectors and BM25 rows disagree")
        return cls(config, encoder, bm25, vectors, scales, store, passage_article, articles, index_id)

    # ---- asking ---------------------------------------------------------------------

    def _dense_scores(self, query: np.ndarray) -> np.ndarray:
        if self.scales is None:
            return self.vectors @ query
        out = np.empty(len(self.vectors), dtype=np.float32)
        for start in range(0, len(self.vectors), _CHUNK_ROWS):
            rows = self.vectors[start : start + _CHUNK_ROWS]
            buf = self._buffer[: len(rows)]
            np.copyto(buf, rows, casting="unsafe")
            out[start : start + len(rows)] = buf @ query
        return out * self.scales

    def _bm25_scores(self, words: list[str]) -> np.ndarray:
        ids = self.bm25.get_tokens_ids(words) if words else []
        if not ids:
            return np.zeros(len(self.passage_article), dtype=np.float32)
        return np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, question: str, k: int = 5, query_vector: np.ndarray | None = None) -> list[Hit]:
        """The k best articles, each by its best passage, fused from both rankings."""
        return self.assess(question, k, query_vector)[0]

    def assess(
        self, question: str, k: int = 5, query_vector: np.ndarray | None = None
    ) -> tuple[list[Hit], dict[str, float]]:
        """The k best articles (as search) and the abstention features of the question
        (config.ABSTAIN_FEATURES)."""
        cfg = self.config
        words = terms(question)
        if query_vector is None:
            query_vector = self.encoder.encode([question])[0]
        dense = self._dense_scores(query_vector)
        lexical = self._bm25_scores(words)
        n = len(dense)
        take = min(cfg.candidates, n)
        top_dense = np.argpartition(-dense, take - 1)[:take]
        top_dense = top_dense[np.argsort(-dense[top_dense], kind="stable")]
        positive = np.flatnonzero(lexical > 0)
        if len(positive) > take:
            positive = positive[np.argpartition(-lexical[positive], take - 1)[:take]]
        top_lexical = positive[np.argsort(-lexical[positive], kind="stable")]
        fused: dict[int, float] = {}
        if cfg.fusion == "rrf":
            w = cfg.dense_weight
            for rank, row in enumerate(top_dense):
                fused[int(row)] = fused.get(int(row), 0.0) + w / (cfg.rrf_k + rank + 1)
            for rank, row in enumerate(top_lexical):
                fused[int(row)] = fused.get(int(row), 0.0) + (1 - w) / (cfg.rrf_k + rank + 1)
        else:
            # The cosine keeps its own scale (so it can be compared with a threshold);
            # BM25 has none, so it is divided by this question's best BM25 score.
            peak = float(lexical[top_lexical[0]]) if len(top_lexical) else 0.0
            for row in np.union1d(top_dense, top_lexical):
                lex = float(lexical[row]) / peak if peak > 0 else 0.0
                fused[int(row)] = float(dense[row]) + cfg.lexical_weight * lex
        ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        hits: list[Hit] = []
        seen: set[int] = set()
        for row, score in ranked:
            art = int(self.passage_article[row])
            if art in seen:
                continue
            seen.add(art)
            meta = self.articles[art]
            hits.append(Hit(meta["id"], meta["title"], meta["url"], row, score, float(dense[row]), float(lexical[row])))
            if len(hits) == max(k, 2):
                break
        agree = bool(len(top_lexical)) and self.passage_article[top_dense[0]] == self.passage_article[top_lexical[0]]
        features = {
            "dense": hits[0].dense if hits else 0.0,
            "margin": (hits[0].fused - (hits[1].fused if len(hits) > 1 else 0.0)) if hits else 0.0,
            "fused": hits[0].fused if hits else 0.0,
            "agreement": 1.0 if agree else 0.0,
        }
        return hits[:k], features

    def abstain_score(self, features: dict[str, float]) -> float:
        """How sure the index is of its best article: the probability, by a logistic
        regression fitted on validation questions, that it is the right one. Its
        features are the cosine of the question and that article's passage and how far
        the article's fused score is ahead of the next one's (a close second means the
        question is ambiguous or the help center does not really cover it)."""
        cfg = self.config
        z = cfg.abstain_bias + sum(
            w * features[f] for f, w in zip(cfg.abstain_features, cfg.abstain_weights, strict=True)
        )
        return float(1.0 / (1.0 + np.exp(-z)))

    def answer(self, question: str, k: int = 3, threshold: float | None = None) -> Answer:
        """The best passage's most relevant sentences with their citation, or an
        abstention when the score is below the threshold (the considered hits are
        returned either way, for review)."""
        threshold = self.config.threshold if threshold is None else threshold
        hits, features = self.assess(question, k=k)
        top = hits[0] if hits else None
        score = self.abstain_score(features) if hits else 0.0
        if top is None or score < threshold:
            return Answer(question, False, score, threshold, "", "", "", "", "", hits, features)
        passage = self.passages[top.passage]
        text = extract_answer(
            passage.text, terms(question), self._term_idf, self.config.answer_sentences, self.config.answer_max_words
        )
        return Answer(
            question, True, score, threshold, text, top.article_id, top.title, top.url, passage.heading, hits, features
        )

    def _term_idf(self, term: str) -> float:
        tid = self.bm25.vocab_dict.get(term)
        return float(self._idf[tid]) if tid is not None and tid < len(self._idf) else 0.0

    def with_threshold(self, threshold: float, rule: str) -> KnowledgeIndex:
        self.config.threshold = float(threshold)
        self.config.threshold_rule = rule
        return self

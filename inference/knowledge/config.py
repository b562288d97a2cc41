"""Typed configuration of a knowledge index: what to build (KnowledgeConfig) and
what a built index records about itself (IndexConfig, saved as config.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from inference import artifact

Fusion = Literal["rrf", "weighted"]
AbstainFeature = Literal["dense", "margin", "fused", "agreement"]
VectorDtype = Literal["int8", "float32"]
FUSIONS = ("rrf", "weighted")
# What the abstention classifier may look at, per question (see KnowledgeIndex.assess):
# "dense": cosine of the question and the best article's passage; "margin": the best
# article's fusion score minus the second's; "fused": the best fusion score;
# "agreement": 1 when the best dense passage and the best BM25 passage are of one article.
ABSTAIN_FEATURES = ("dense", "margin", "fused", "agreement")
VECTOR_DTYPES = ("int8", "float32")
INDEX_KIND = "knowledge-index"
FORMAT_VERSION = 2  # 2: the abstention score is a fitted probability
# An index of format 1 saved a threshold on the old score's scale (cosine plus weighted
# margin); loaded today it is scored by the default weights, so it takes their
# threshold, the one bench/knowledge.py chose with them, until it is rebuilt.
FORMAT_1_THRESHOLD = 0.774


@dataclass
class KnowledgeConfig:
    """Settings of the index. The defaults were chosen on the validation half of the
    demo dev set (bench/knowledge.py), never on its test half."""

    base_model: str | None = None  # None: $INTENT_BASE_MODEL, else the bundled MiniLM
    own_encoder: bool = False  # True: a fine-tuned encoder, saved inside the index
    max_length: int = 128  # encoder tokens per passage (MiniLM was trained on 128)
    min_words: int = 60
    max_words: int = 200
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # Fusion of the two rankings. "weighted": cosine + lexical_weight * BM25 / the
    # question's best BM25 score. "rrf": reciprocal rank fusion, dense_weight /
    # (rrf_k + dense rank) + (1 - dense_weight) / (rrf_k + BM25 rank).
    fusion: Fusion = "weighted"
    lexical_weight: float = 0.3
    rrf_k: int = 60
    dense_weight: float = 0.5
    candidates: int = 50  # passages taken from each list before fusing
    vector_dtype: VectorDtype = "int8"  # int8 rows with one float32 scale each
    # Abstention: a logistic regression on abstain_features gives the probability that
    # the best article is right; the index answers when it is >= threshold. Weights and
    # bias are fitted on validation questions (evaluation.calibrate); these defaults are
    # the fit on the demo dev set's validation half (bench/knowledge.py).
    abstain_features: tuple[AbstainFeature, ...] = ("dense", "margin")
    abstain_weights: tuple[float, ...] = (7.7057, 13.9297)
    abstain_bias: float = -3.8865
    abstain_c: float = 1.0  # inverse L2 strength of the fit (scikit-learn's C)
    answer_sentences: int = 3
    answer_max_words: int = 70
    threshold: float = 0.0  # answers below it abstain; set on validation questions
    threshold_rule: str = "not chosen (answers everything)"
    batch_size: int = 32
    threads: int | None = None  # None: $INFERENCE_THREADS, else all cores
    device: str | None = None

    def validate(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        unknown = [f for f in self.abstain_features if f not in ABSTAIN_FEATURES]
        if unknown or not self.abstain_features:
            raise ValueError(f"abstain_features must be some of {', '.join(ABSTAIN_FEATURES)}, got {unknown or 'none'}")
        if len(self.abstain_weights) != len(self.abstain_features):
            raise ValueError("abstain_weights needs one weight per abstain feature")
        if self.abstain_c <= 0:
            raise ValueError("abstain_c must be > 0")
        if self.vector_dtype not in VECTOR_DTYPES:
            raise ValueError(f"vector_dtype must be one of {', '.join(VECTOR_DTYPES)}, got {self.vector_dtype!r}")
        if not 0 < self.min_words <= self.max_words:
            raise ValueError("need 0 < min_words <= max_words")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        if self.answer_sentences < 1 or self.candidates < 1:
            raise ValueError("answer_sentences and candidates must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnowledgeConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("abstain_features", "abstain_weights"):  # lists in JSON
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class IndexConfig:
    """Everything needed to trust and reload a built index, saved in config.json."""

    settings: dict[str, Any]  # the KnowledgeConfig it was built with (threshold included)
    base_model: str
    base_model_sha256: str
    hidden_size: int
    passages: int
    articles: int
    articles_sha256: str  # over the articles' ids, titles, urls and bodies
    kind: str = INDEX_KIND
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    @property
    def knowledge(self) -> KnowledgeConfig:
        return KnowledgeConfig.from_dict(self.settings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        return artifact.config_from_dict(cls, data)

"""The knowledge index as a model kind of the one version lifecycle: built from the
published articles on the training queue, evaluated on labelled questions, activated
past the regression guard, rolled back; rebuilt (debounced) when articles change."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from chatbot.knowledge.models import KnowledgeIndexVersion
from chatbot.knowledge.services import learning_pairs, published_articles
from chatbot.modelops.lifecycle import ModelKind, Trained, TrainingRefused
from inference.knowledge import KnowledgeDataError, Question, load_questions

log = logging.getLogger(__name__)

REBUILD_PENDING_KEY = "knowledge:rebuild-pending"
# Fewer answerable labelled questions than this (for the current help center): the
# threshold is not chosen on them but taken from KNOWLEDGE_DEFAULT_THRESHOLD.
MIN_LABELLED_QUESTIONS = 20


def labelled_questions(article_ids: set[str]) -> list[Question]:
    """The KNOWLEDGE_QUESTIONS that fit this help center (unknown articles left out)."""
    try:
        questions = load_questions(settings.KNOWLEDGE_QUESTIONS)
    except KnowledgeDataError as exc:
        log.warning("no labelled knowledge questions: %s", exc)
        return []
    return [q for q in questions if not q.article_id or q.article_id in article_ids]


class KnowledgeIndexes(ModelKind):
    model = KnowledgeIndexVersion
    label = "Knowledge index"

    @property
    def artifact_errors(self):
        from inference.artifact import ArtifactError

        return (ArtifactError, OSError)

    def train(self, version: KnowledgeIndexVersion, progress, **options) -> Trained:
        """Build over the published articles; the threshold is chosen on the validation
        half of the labelled questions by the documented rule, the other half is held out."""
        from inference.knowledge import KnowledgeConfig, KnowledgeIndex, calibrate, split_questions
        from inference.knowledge.artifact import articles_fingerprint

        articles = published_articles()
        if not articles:
            raise TrainingRefused("No published articles: import the help center first.")
        progress(0.05, f"indexing {len(articles)} articles")
        started = time.perf_counter()
        config = KnowledgeConfig(threads=settings.INFERENCE_THREADS, device=settings.INFERENCE_DEVICE, **options)
        encoder, tuned_pairs, pair_holdout, tuned_dir = self._fine_tuned_encoder(version, articles, config, progress)
        index = KnowledgeIndex.build(articles, config, encoder=encoder)
        questions = labelled_questions({a.id for a in articles})
        holdout: list[Question] = []
        if sum(bool(q.article_id) for q in questions) >= MIN_LABELLED_QUESTIONS:
            progress(0.7, "fitting the abstention classifier and its threshold")
            validation, holdout = split_questions(questions)
            threshold, rule = calibrate(index, validation)
        else:
            threshold = settings.KNOWLEDGE_DEFAULT_THRESHOLD
            rule = f"KNOWLEDGE_DEFAULT_THRESHOLD (fewer than {MIN_LABELLED_QUESTIONS} labelled questions fit)"
        index.with_threshold(threshold, rule)
        path = index.save(Path(settings.MODEL_DIR) / f"knowledge-v{version.pk}")
        if tuned_dir is not None:  # the index holds its own copy of the tuned encoder now
            shutil.rmtree(tuned_dir, ignore_errors=True)
        holdout += pair_holdout  # the guard also compares hit@1 on the held-out helpful pairs
        fields = {
            "index_id": index.index_id,
            "article_count": len(articles),
            "passage_count": len(index.passage_article),
            "articles_sha256": articles_fingerprint(articles),
            "metrics": {
                "threshold": round(threshold, 6),
                "threshold_rule": rule,
                "build_seconds": round(time.perf_counter() - started, 2),
                "holdout_questions": len(holdout),
                "fine_tuned_pairs": tuned_pairs,
            },
        }
        return Trained(artifact_dir=path, holdout=[[q.text, q.article_id] for q in holdout], fields=fields)

    def _fine_tuned_encoder(self, version, articles, config, progress):
        """(encoder, pairs tuned on, held-out pairs, directory of the tuned encoder): the shared encoder
        unless KNOWLEDGE_FINE_TUNE is on and enough helpful pairs fit this help center;
        then one fine-tuned on four fifths of them (the rest held out for the guard)."""
        import random

        from inference.encoder import SentenceEncoder
        from inference.knowledge import KnowledgeIndex
        from inference.knowledge.finetune import fine_tune, training_pairs

        encoder = shared_encoder()
        if not settings.KNOWLEDGE_FINE_TUNE:
            return encoder, 0, [], None
        ids = {a.id for a in articles}
        pairs = [(q, a) for q, a in learning_pairs() if a in ids]
        if len(pairs) < settings.KNOWLEDGE_FINE_TUNE_MIN_PAIRS:
            log.info("not fine-tuning: %d helpful pairs, fewer than KNOWLEDGE_FINE_TUNE_MIN_PAIRS", len(pairs))
            return encoder, 0, [], None
        random.Random(version.pk).shuffle(pairs)
        cut = len(pairs) // 5
        held, train = pairs[:cut], pairs[cut:]
        progress(0.1, f"fine-tuning the encoder on {len(train)} helpful question-article pairs")
        base = KnowledgeIndex.build(articles, dataclasses.replace(config), encoder=encoder)
        tuned_dir = fine_tune(
            encoder, training_pairs(base, train), Path(settings.MODEL_DIR) / f".knowledge-v{version.pk}-encoder"
        )
        config.own_encoder = True
        tuned = SentenceEncoder(str(tuned_dir), device=settings.INFERENCE_DEVICE, max_length=config.max_length)
        return tuned, len(train), [Question(q, a) for q, a in held], tuned_dir

    def load(self, artifact_dir):
        from inference.knowledge import KnowledgeIndex

        return KnowledgeIndex.load(artifact_dir, encoder=shared_encoder())

    def evaluate(self, loaded, holdout) -> dict:
        from inference.knowledge import ask_all, report

        questions = [Question(text, article_id) for text, article_id in holdout]
        return {**report(ask_all(loaded, questions), loaded.config.threshold), "holdout": [list(q) for q in holdout]}

    def regression_problems(self, report: dict, baseline: dict) -> list[str]:
        limit = settings.KNOWLEDGE_MAX_REGRESSION
        problems = []
        if report["hit@1"] < baseline.get("hit@1", 0.0) - limit:
            problems.append(f"hit@1 fell from {baseline['hit@1']:.3f} to {report['hit@1']:.3f}")
        if report["answered_wrong_of_all"] > baseline.get("answered_wrong_of_all", 1.0) + limit:
            problems.append(
                f"answered wrong rose from {baseline['answered_wrong_of_all']:.3f} "
                f"to {report['answered_wrong_of_all']:.3f}"
            )
        return problems

    def summary(self, report: dict, loaded) -> dict:
        if not report:
            return {}
        keys = ("hit@1", "hit@3", "mrr", "answered_wrong_of_all", "unanswerable_abstained")
        return {"metrics": {f"holdout_{k}": report[k] for k in keys}}

    def enqueue(self, version_id: int) -> None:
        from chatbot.knowledge.tasks import build_index_version

        build_index_version.delay(version_id)


knowledge_indexes = KnowledgeIndexes()

_encoder = None


def shared_encoder():
    """One MiniLM per process for every index it loads (a swap does not load a second)."""
    global _encoder
    if _encoder is None:
        from inference.encoder import SentenceEncoder

        _encoder = SentenceEncoder(device=settings.INFERENCE_DEVICE, max_length=128)
    return _encoder


def start_build(*, user=None, activate_when_ready: bool = True) -> KnowledgeIndexVersion:
    """A queued index build on the training queue (TrainingRefused while one runs)."""
    return knowledge_indexes.start(user=user, activate_when_ready=activate_when_ready)


def help_center_changed() -> bool:
    """Do the published articles differ from those of the active (or building) index?"""
    from inference.knowledge.artifact import articles_fingerprint

    current = articles_fingerprint(published_articles())
    latest = (
        KnowledgeIndexVersion.objects.filter(busy=True).first()
        or KnowledgeIndexVersion.objects.filter(is_active=True).first()
    )
    return latest is None or latest.articles_sha256 != current


def schedule_rebuild() -> None:
    """Debounced: the first change in a quiet period schedules one rebuild
    KNOWLEDGE_REBUILD_DELAY_S later; changes meanwhile ride along with it."""
    if not settings.KNOWLEDGE_AUTO_REBUILD:
        return
    delay = settings.KNOWLEDGE_REBUILD_DELAY_S
    if cache.add(REBUILD_PENDING_KEY, 1, timeout=delay + 300):
        from chatbot.knowledge.tasks import rebuild_index_if_changed

        transaction.on_commit(lambda: rebuild_index_if_changed.apply_async(countdown=delay))


def rebuild_if_changed() -> KnowledgeIndexVersion | None:
    """The debounced rebuild: a new version when the help center changed since the
    last build; while another build runs, tried again after the delay."""
    cache.delete(REBUILD_PENDING_KEY)
    if KnowledgeIndexVersion.objects.filter(busy=True).exists():
        schedule_rebuild()
        return None
    if not help_center_changed():
        return None
    try:
        return start_build(activate_when_ready=True)
    except TrainingRefused:
        schedule_rebuild()
        return None

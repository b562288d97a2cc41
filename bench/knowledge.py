"""Knowledge-base answers: quality on the demo dev set, speed, build time, memory.

    python bench/knowledge.py                 # everything (about 5 minutes on 2 cores)
    python bench/knowledge.py --part quality  # or speed, build, memory, finetune

quality: every setting (fusion, lexical weight, abstention score, int8 vs float32
vectors) is chosen on the validation half of chatbot/knowledge/demo/dev_questions.csv,
the threshold too; the figures are on the test half, which chooses nothing.
speed / build / memory: synthetic help centers made from the demo articles' sentences
(see synthetic_articles)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402, RUF100 - the path above must be set first
from inference.knowledge import (  # noqa: E402, RUF100 - the path above must be set first
    Article,
    KnowledgeConfig,
    KnowledgeIndex,
    ask_all,
    calibrate,
    choose_threshold,
    format_report,
    load_articles,
    load_questions,
    report,
    split_questions,
)
from inference.knowledge.passages import split_sentences  # noqa: E402, RUF100

HELP_CENTER = ROOT / "chatbot" / "knowledge" / "demo" / "help_center"
DEV_SET = ROOT / "chatbot" / "knowledge" / "demo" / "dev_questions.csv"
THREADS = 2  # the goals are for 2 CPU cores


def _quiet_encoder(config: KnowledgeConfig):
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from inference.encoder import SentenceEncoder

    return SentenceEncoder(config.base_model, device="cpu", max_length=config.max_length)


FEATURE_SETS = [
    ("dense", "margin"),
    ("dense", "margin", "agreement"),
    ("dense", "margin", "fused"),
    ("dense", "agreement"),
    ("dense", "margin", "fused", "agreement"),
]


def _outcomes(index: KnowledgeIndex, questions, vectors) -> list:
    """Outcomes with abstention features, from precomputed question vectors."""
    from inference.knowledge.evaluation import RANK_DEPTH, Outcome

    out = []
    for q, v in zip(questions, vectors, strict=True):
        hits, features = index.assess(q.text, k=RANK_DEPTH, query_vector=v)
        out.append(Outcome(q, [h.article_id for h in hits], 0.0, 0.0, features))
    return out


def _fit_and_score(index: KnowledgeIndex, fit_on: list, score: list) -> tuple[float, dict]:
    """Fit the classifier and choose the threshold on fit_on; report on score."""
    from inference.knowledge.evaluation import fit_abstention, rescore

    fit_abstention(index, fit_on)
    threshold, _ = choose_threshold(rescore(index, fit_on))
    return threshold, report(rescore(index, score), threshold)


def _half_splits(outcomes: list, repeats: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(repeats):
        groups = [[o for o in outcomes if o.answerable], [o for o in outcomes if not o.answerable]]
        a, b = [], []
        for g in groups:
            g = list(g)
            rng.shuffle(g)
            a += g[: len(g) // 2]
            b += g[len(g) // 2 :]
        yield a, b


def tune(index: KnowledgeIndex, val) -> tuple[dict, list]:
    """Search-time settings by validation hit@1 (the abstention classifier's defaults
    break ties: most right answers at the threshold chosen on the same questions)."""
    vectors = index.encoder.encode([q.text for q in val])  # (questions, hidden): once for the whole grid
    grid = [{"fusion": "rrf", "dense_weight": w, "rrf_k": k} for w in (0.5, 0.7, 0.85) for k in (10, 60)]
    grid += [{"fusion": "weighted", "lexical_weight": w} for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    rows = []
    for settings in grid:
        for key, value in settings.items():
            setattr(index.config, key, value)
        outcomes = _outcomes(index, val, vectors)
        _, r = _fit_and_score(index, outcomes, outcomes)
        rows.append((settings, r["hit@1"], r["answerable_answered_right"]))
    rows.sort(key=lambda row: (-row[1], -row[2]))
    return rows[0][0], rows


def choose_abstention(index: KnowledgeIndex, val, repeats: int = 40) -> tuple[dict, list]:
    """The classifier's features and L2 strength, judged only inside the validation
    half: fitted (with its threshold) on one random half of it and scored on the
    other, `repeats` times. Taken: the most right answers among the settings that
    met both goals (answered-wrong <= 5 %, declined >= 80 %) in at least 90 % of splits."""
    outcomes = _outcomes(index, val, index.encoder.encode([q.text for q in val]))
    rows = []
    for features in FEATURE_SETS:
        for c in (0.1, 1.0):
            index.config.abstain_features, index.config.abstain_c = features, c
            index.config.abstain_weights = (1.0,) * len(features)
            stats = np.array(
                [
                    [r["answerable_answered_right"], r["unanswerable_abstained"], r["answered_wrong_of_all"]]
                    for a, b in _half_splits(outcomes, repeats)
                    for r in [_fit_and_score(index, a, b)[1]]
                ]
            )
            met = float(np.mean((stats[:, 1] >= 0.8) & (stats[:, 2] <= 0.05)))
            rows.append(({"abstain_features": features, "abstain_c": c}, *stats.mean(axis=0), met))
    eligible = [r for r in rows if r[4] >= 0.9] or rows
    best = max(eligible, key=lambda r: r[1])[0]
    return best, rows


def split_robustness(index: KnowledgeIndex, questions, repeats: int = 30) -> dict:
    """Not a choice, a check: the whole procedure (fit and threshold on one half of the
    dev set, report on the other) over many random halvings, against the rule before
    the classifier (cosine + 4 x margin, only its threshold chosen)."""
    outcomes = _outcomes(index, questions, index.encoder.encode([q.text for q in questions]))
    cfg = index.config
    fitted = (cfg.abstain_features, cfg.abstain_c)
    out = {}
    for name in ("classifier", "cosine + 4 x margin"):
        stats = []
        for a, b in _half_splits(outcomes, repeats, seed=1):
            if name == "classifier":
                cfg.abstain_features, cfg.abstain_c = fitted
                cfg.abstain_weights = (1.0,) * len(cfg.abstain_features)
                _, r = _fit_and_score(index, a, b)
            else:
                fixed = [dataclasses.replace(o, score=o.features["dense"] + 4 * o.features["margin"]) for o in a + b]
                threshold, _ = choose_threshold(fixed[: len(a)])
                r = report(fixed[len(a) :], threshold)
            stats.append([r["answerable_answered_right"], r["unanswerable_abstained"], r["answered_wrong_of_all"]])
        s = np.array(stats)
        met = float(np.mean((s[:, 1] >= 0.8) & (s[:, 2] <= 0.05)))
        out[name] = {"right": round(float(s[:, 0].mean()), 4), "declined": round(float(s[:, 1].mean()), 4),
                     "wrong_of_all": round(float(s[:, 2].mean()), 4), "met_both": met}  # fmt: skip
        print(f"  {name}: mean right {s[:, 0].mean():.3f}, declined {s[:, 1].mean():.3f}, "
              f"wrong of all {s[:, 2].mean():.3f}; both goals met in {met:.0%} of {repeats} halvings")  # fmt: skip
    cfg.abstain_features, cfg.abstain_c = fitted
    return out


def part_quality(args) -> dict:
    articles = load_articles(HELP_CENTER)
    questions = load_questions(DEV_SET, {a.id for a in articles})
    val, test = split_questions(questions, 0.5, 13)
    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    t0 = time.perf_counter()
    index = KnowledgeIndex.build(articles, config, encoder)
    build_s = time.perf_counter() - t0
    best, rows = tune(index, val)
    print("validation grid (settings, hit@1, answered right at its threshold), best first:")
    for settings, h1, right in rows[:8]:
        print(f"  {settings}  hit@1 {h1:.4f}  right {right:.4f}")
    for key, value in best.items():
        setattr(index.config, key, value)
    chosen, abst_rows = choose_abstention(index, val)
    print("abstention classifier, fitted on random halves of the validation half and scored on the other "
          "(mean right, declined, wrong of all; share of splits meeting both goals):")  # fmt: skip
    for settings, right, declined, wrong, met in abst_rows:
        print(f"  {settings}  right {right:.3f} declined {declined:.3f} wrong {wrong:.3f} met {met:.2f}")
    for key, value in chosen.items():
        setattr(index.config, key, value)
    index.config.abstain_weights = (1.0,) * len(index.config.abstain_features)  # fitted by calibrate below
    best.update(chosen)
    # Compact vectors: int8 is kept only if validation hit@1 is within 1 point of float32.
    f32 = KnowledgeIndex.build(articles, dataclasses.replace(index.config, vector_dtype="float32"), encoder)
    h_int8 = report(ask_all(index, val), 0.0)["hit@1"]
    h_f32 = report(ask_all(f32, val), 0.0)["hit@1"]
    print(f"validation hit@1: int8 vectors {h_int8:.4f}, float32 {h_f32:.4f}")
    threshold, rule = calibrate(index, val)
    result = report(ask_all(index, test), threshold)
    print(f"\nchosen on validation: {best}, threshold {threshold:.4f} ({rule})")
    print(
        f"demo help center: {len(articles)} articles, {len(index.passage_article)} passages, built in {build_s:.1f} s"
    )
    print(f"TEST half of the dev set ({len(test)} questions):")
    print(format_report(result))
    print("robustness over random halvings of the whole dev set:")
    robust = split_robustness(index, questions)
    return {"chosen": best, "threshold": threshold, "rule": rule, "validation_hit@1_int8": h_int8,
            "validation_hit@1_float32": h_f32, "test": result, "halvings": robust}  # fmt: skip


def part_finetune(args) -> dict:
    """The encoder fine-tuned on question -> article pairs, as helpful votes would give
    them, judged inside the dev set's validation half: two folds, each tuned on one
    fold's answerable questions and scored (hit@1 of the rebuilt index) on the other's."""
    from inference.encoder import SentenceEncoder
    from inference.knowledge.finetune import FineTuneConfig, fine_tune, training_pairs

    articles = load_articles(HELP_CENTER)
    val, _ = split_questions(load_questions(DEV_SET, {a.id for a in articles}), 0.5, 13)
    answerable = [q for q in val if q.article_id]
    random.Random(5).shuffle(answerable)
    folds = [answerable[: len(answerable) // 2], answerable[len(answerable) // 2 :]]
    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    base = KnowledgeIndex.build(articles, config, encoder)
    rows = []
    for i, (train, score) in enumerate([(folds[0], folds[1]), (folds[1], folds[0])]):
        pairs = training_pairs(base, [(q.text, q.article_id) for q in train])
        t0 = time.perf_counter()
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = fine_tune(encoder, pairs, Path(tmp) / "enc", FineTuneConfig())
            tuned = SentenceEncoder(str(path), device="cpu", max_length=config.max_length)
            seconds = time.perf_counter() - t0
            index = KnowledgeIndex.build(articles, dataclasses.replace(config, own_encoder=True), tuned)
            before = report(ask_all(base, score), 0.0)
            after = report(ask_all(index, score), 0.0)
        rows.append({"fold": i, "pairs": len(pairs), "scored": len(score), "train_s": round(seconds, 1),
                     "hit@1_before": before["hit@1"], "hit@1_after": after["hit@1"],
                     "mrr_before": before["mrr"], "mrr_after": after["mrr"]})  # fmt: skip
        print(f"fine-tune fold {i}: {len(pairs)} pairs, {seconds:.0f} s; hit@1 on the other {len(score)} "
              f"{before['hit@1']:.4f} -> {after['hit@1']:.4f}, MRR {before['mrr']:.4f} -> {after['mrr']:.4f}")  # fmt: skip
    return {"folds": rows}


def synthetic_articles(n: int, seed: int = 7) -> list[Article]:
    """n help-center articles of about 300 words in three sections, made of the demo
    articles' sentences and headings with product nouns varied, so passage lengths,
    vocabulary growth and BM25 postings resemble a real help center."""
    demo = load_articles(HELP_CENTER)
    sentences = [s for a in demo for s in split_sentences(re.sub(r"^#+ .*$", "", a.body, flags=re.M)) if len(s) > 30]
    headings = [h for a in demo for h in re.findall(r"^## (.+)$", a.body, flags=re.M)]
    nouns = "kettle lamp toaster blender pan towel duvet shelf mug vase rug chair speaker clock mirror".split()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sections = []
        for _ in range(3):
            body = " ".join(rng.choice(sentences) for _ in range(rng.randint(4, 7)))
            body = body.replace("item", f"{rng.choice(nouns)}-{rng.randint(1, 400)}")
            sections.append(f"## {rng.choice(headings)}\n\n{body}")
        title = f"{rng.choice(demo).title} ({rng.choice(nouns)} {i})"
        out.append(Article(id=f"a{i}", title=title, body="\n\n".join(sections), url=f"https://example.com/{i}"))
    return out


def part_build(args) -> dict:
    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    articles = synthetic_articles(1000)
    t0 = time.perf_counter()
    index = KnowledgeIndex.build(articles, config, encoder)
    seconds = time.perf_counter() - t0
    n = len(index.passage_article)
    print(f"build: 1,000 articles ({n} passages) in {seconds:.1f} s ({n / seconds:.0f} passages/s); goal <= 60 s")
    return {"articles": 1000, "passages": n, "seconds": round(seconds, 1)}


def _big_index(n_passages: int, encoder, config: KnowledgeConfig) -> KnowledgeIndex:
    """An index of about n_passages synthetic passages. Their vectors are real
    encoder outputs of demo passages with noise added (encoding them all would take
    minutes and change neither speed nor memory: the dense search scans every row)."""
    from inference.knowledge import split_article

    sample = synthetic_articles(200)
    per_article = sum(len(split_article(a, config.min_words, config.max_words)) for a in sample) / len(sample)
    articles = synthetic_articles(round(n_passages / per_article))
    n = sum(len(split_article(a, config.min_words, config.max_words)) for a in articles)
    base = encoder.encode([p.search_text for a in load_articles(HELP_CENTER) for p in split_article(a)])
    rng = np.random.default_rng(0)
    dense = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return KnowledgeIndex.build(articles, config, encoder, dense=dense.astype(np.float32))


def part_speed(args) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    index = _big_index(10_000, encoder, config)
    questions = [q.text for q in load_questions(DEV_SET)]
    for q in questions[:20]:
        index.answer(q)
    latencies = []
    for q in questions:
        t0 = time.perf_counter()
        index.answer(q)
        latencies.append((time.perf_counter() - t0) * 1000)
    p50, p95 = np.percentile(latencies, 50), np.percentile(latencies, 95)
    n = len(index.passage_article)
    print(f"speed: retrieval + answer over {n} passages, {len(questions)} questions one at a time, "
          f"{THREADS} threads: p50 {p50:.2f} ms, p95 {p95:.2f} ms (goal p50 <= 15, p95 <= 40)")  # fmt: skip
    return {"passages": n, "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2)}


def _memory_mb() -> dict[str, float]:
    """Resident memory: all of it, anonymous (the process's own) and file-backed
    (pages of memory-mapped index files, which the kernel can drop and re-read)."""
    out = {}
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(line.split()[1]) / 1024
    return out


def _measure_loaded(index_dir: str) -> None:
    """Child process: resident memory before and after loading the index and asking questions."""
    import gc

    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    encoder.encode(["warm up the encoder"])
    gc.collect()
    before = _memory_mb()
    index = KnowledgeIndex.load(index_dir, encoder=encoder)
    loaded = _memory_mb()
    for q in load_questions(DEV_SET)[:100]:
        index.answer(q.text)
    gc.collect()
    after = _memory_mb()
    print(json.dumps({"before": before, "loaded": loaded, "after_100_questions": after}))


def part_memory(args) -> dict:
    import tempfile

    config = KnowledgeConfig(threads=THREADS)
    encoder = _quiet_encoder(config)
    t0 = time.perf_counter()
    index = _big_index(100_000, encoder, config)
    with tempfile.TemporaryDirectory() as tmp:
        path = index.save(Path(tmp) / "index")
        n = len(index.passage_article)
        print(f"memory: {n} passages built and saved in {time.perf_counter() - t0:.0f} s (vectors given)")
        del index
        out = subprocess.run(
            [sys.executable, __file__, "--measure-loaded", str(path)],
            capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)},
        )  # fmt: skip
        sizes = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()}
    m = json.loads(out.stdout.strip().splitlines()[-1])
    added = {k: round(m["after_100_questions"][k] - m["before"][k], 1) for k in m["before"]}
    on_load = {k: round(m["loaded"][k] - m["before"][k], 1) for k in m["before"]}
    print(
        f"memory: process with the encoder loaded {m['before']['VmRSS']:.0f} MB resident; the index adds "
        f"{on_load['VmRSS']:.0f} MB on load and {added['VmRSS']:.0f} MB after 100 questions "
        f"({added['RssAnon']:.0f} MB anonymous + {added['RssFile']:.0f} MB of mapped index files); goal <= 200 MB. "
        f"On disk {sum(sizes.values()) / 2**20:.0f} MB, of which int8 vectors {sizes['vectors.npy'] / 2**20:.0f} MB"
    )
    return {"passages": n, "resident_mb": m, "index_adds_mb": added, "disk_mb": round(sum(sizes.values()) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "quality", "speed", "build", "memory", "finetune"], default="all")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--measure-loaded", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_loaded:
        _measure_loaded(args.measure_loaded)
        return
    print(machine.describe())
    parts = ["quality", "speed", "build", "memory"] if args.part == "all" else [args.part]
    figures = {}
    for part in parts:
        figures[part] = globals()[f"part_{part}"](args)
        print()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

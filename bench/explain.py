"""Which word attributions to show staff: occlusion on the serving backend against
integrated gradients (Captum) on the torch model, by fidelity and by cost.

Fidelity is a deletion test on CLINC150 validation queries: leave out the k
words a method weighs highest and measure how far the explained intent's
calibrated probability falls; a faithful method makes it fall far, and further
than leaving out k random words. Cost is the wall time of one explanation.
Also prints the model's reliability (expected calibration error) on validation.

    python bench/explain.py --model var/bench/clinc150/fast --queries 200

The model directory is trained by bench/nlu_clinc150.py (or: python -m inference train).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from inference import Example, Predictor, TrainConfig, train_intent_model  # noqa: E402
from inference.intents.calibration import softmax  # noqa: E402
from inference.intents.explain import label_probabilities, occlusion, reliability, without, word_spans  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"


class IntegratedGradients:
    """Layer integrated gradients over the word embeddings (baseline: [PAD] tokens
    between [CLS] and [SEP]), summed over the hidden size and then over each word's
    word pieces, for the explained label's calibrated probability."""

    def __init__(self, model_dir: Path, steps: int) -> None:
        import torch
        from captum.attr import LayerIntegratedGradients
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        from inference.encoder import encoder_from_config
        from inference.intents.model import IntentModel

        self.torch = torch
        predictor = Predictor.load(model_dir, backend="torch")
        self.config = predictor.config
        model = IntentModel(encoder_from_config(model_dir / "encoder" / "config.json"), len(self.config.labels))
        model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
        self.model = model.eval()
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.steps = steps
        self.mask = None

        def forward(input_ids, label_index):
            mask = self.mask.expand(input_ids.shape[0], -1)
            logits = self.model(input_ids, mask) / self.config.temperature  # (batch, labels)
            return torch.softmax(logits, dim=-1)[:, label_index]

        self.ig = LayerIntegratedGradients(forward, self.model.encoder.embeddings.word_embeddings)

    def weights(self, text: str, label: str) -> np.ndarray:
        torch = self.torch
        encoding = self.tokenizer.encode(text)
        ids = torch.tensor([encoding.ids])  # (1, seq)
        self.mask = torch.ones_like(ids)
        baseline = ids.clone()
        baseline[0, 1:-1] = self.tokenizer.token_to_id("[PAD]") or 0
        index = self.config.labels.index(label)
        attributions = self.ig.attribute(
            ids,
            baselines=baseline,
            additional_forward_args=(index,),
            n_steps=self.steps,
            internal_batch_size=self.steps,
        )
        per_token = attributions.sum(dim=-1)[0].detach().numpy()  # (seq,)
        spans = word_spans(text)
        per_word = np.zeros(len(spans))
        for token, (start, end) in enumerate(encoding.offsets):
            if end <= start:
                continue  # [CLS], [SEP]
            for w, (s, e) in enumerate(spans):
                if s <= start < e:
                    per_word[w] += per_token[token]
                    break
        return per_word


def deletion(predictor: Predictor, text: str, label: str, weights: np.ndarray, k: int) -> float:
    spans = word_spans(text)
    top = list(np.argsort(-weights)[:k])
    p = label_probabilities(predictor, [text, without(text, spans, top)], label)
    return float(p[0] - p[1])


def random_deletion(predictor: Predictor, text: str, label: str, k: int, rng: random.Random, draws: int = 10) -> float:
    spans = word_spans(text)
    texts = [text] + [without(text, spans, rng.sample(range(len(spans)), k)) for _ in range(draws)]
    p = label_probabilities(predictor, texts, label)
    return float(p[0] - p[1:].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "clinc150" / "fast")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ig-steps", type=int, default=32)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    data = json.loads(args.data.read_text())
    if not (args.model / "checksums.json").is_file():
        print(f"training a fast-mode CLINC150 model into {args.model} ...", flush=True)
        train = [Example(t, i) for t, i in data["train"] + data["oos_train"]]
        val = [Example(t, i) for t, i in data["val"] + data["oos_val"]]
        train_intent_model(train, args.model, val=val, config=TrainConfig(mode="fast", seed=args.seed))

    rng = random.Random(args.seed)
    predictor = Predictor.load(
        args.model, backend="onnx" if "onnx" in Predictor.load(args.model).config.onnx_files else "torch"
    )
    ig = IntegratedGradients(args.model, args.ig_steps)
    queries = [(t, i) for t, i in data["val"] if len(t.split()) >= 3]
    rng.shuffle(queries)
    queries = queries[: args.queries]

    results = {"occlusion": {"k1": [], "k25": [], "ms": []}, "integrated_gradients": {"k1": [], "k25": [], "ms": []}}
    random_falls = {"k1": [], "k25": []}
    for text, _ in queries:
        label = predictor.predict([text])[0].ranking[0][0]
        k25 = max(1, len(word_spans(text)) // 4)
        for name, method in (
            ("occlusion", lambda t, lab: occlusion(predictor, t, lab)),
            ("integrated_gradients", ig.weights),
        ):
            t0 = time.perf_counter()
            weights = method(text, label)
            results[name]["ms"].append((time.perf_counter() - t0) * 1000)
            results[name]["k1"].append(deletion(predictor, text, label, weights, 1))
            results[name]["k25"].append(deletion(predictor, text, label, weights, k25))
        random_falls["k1"].append(random_deletion(predictor, text, label, 1, rng))
        random_falls["k25"].append(random_deletion(predictor, text, label, k25, rng))

    in_scope = [(t, i) for t, i in data["val"]]
    logits = predictor.logits([t for t, _ in in_scope])
    probs = softmax(logits, predictor.config.temperature)
    top = probs.argmax(axis=1)
    labels = predictor.labels
    curve = reliability(probs.max(axis=1), [labels[j] == gold for j, (_, gold) in zip(top, in_scope, strict=True)])

    print(f"machine: {machine.describe()}")
    print(f"model: {args.model} ({predictor.backend}); {len(queries)} CLINC150 validation queries of 3+ words")
    print(
        "| method | fall of p, top-1 word left out | fall, top 25 % of words | wins over random (25 %) | ms p50 | ms p95 |"
    )
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, r in results.items():
        wins = np.mean([a > b for a, b in zip(r["k25"], random_falls["k25"], strict=True)])
        row = {
            "fall_top1": round(statistics.mean(r["k1"]), 4),
            "fall_top25": round(statistics.mean(r["k25"]), 4),
            "wins_over_random": round(float(wins), 3),
            "ms_p50": round(float(np.percentile(r["ms"], 50)), 1),
            "ms_p95": round(float(np.percentile(r["ms"], 95)), 1),
        }
        summary[name] = row
        print(
            f"| {name} | {row['fall_top1']:.4f} | {row['fall_top25']:.4f} | {row['wins_over_random']:.1%} "
            f"| {row['ms_p50']:.1f} | {row['ms_p95']:.1f} |"
        )
    print(
        f"| random words | {statistics.mean(random_falls['k1']):.4f} | {statistics.mean(random_falls['k25']):.4f} | - | - | - |"
    )
    print(f"expected calibration error on validation (in scope, {len(in_scope)} queries): {curve.ece:.4f}")
    if args.json:
        args.json.write_text(
            json.dumps({"methods": summary, "ece": curve.ece, "machine": machine.describe()}, indent=2)
        )


if __name__ == "__main__":
    main()

"""One real retrain on the demo data, the way the admin runs it: train on the
hash-fixed train split, evaluate the serving and the retrained version on the
same held-out examples. Prints the machine, times and metrics.

    DEBUG=1 python bench/retrain_demo.py [--mode fast|full]
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402

from chatbot.nlu.evaluation import activation_problems, evaluate_on, split_examples  # noqa: E402
from inference import Example, Predictor, TrainConfig, train_intent_model  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "chatbot" / "nlu" / "demo" / "store_intents.yml"
MISUNDERSTOOD = "is my loot on the way"
# What a reviewer accepts from the inbox: the message and four paraphrases.
ACCEPTED = [MISUNDERSTOOD, "where is my loot", "when will my loot get here", "is my loot coming", "wheres my loot"]


def train(pairs, out: Path, mode: str) -> tuple[Path, float]:
    started = time.perf_counter()
    path = train_intent_model([Example(t, i) for t, i in pairs], out, config=TrainConfig(mode=mode, seed=13))
    return path, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["fast", "full"], default="fast")
    mode = parser.parse_args().mode
    import torch

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"cuda {torch.cuda.is_available()}, python {platform.python_version()}"
    )
    data = yaml.safe_load(DEMO.read_text())
    pairs = [(t, i["name"]) for i in data["intents"] for t in i["examples"]]
    with tempfile.TemporaryDirectory() as tmp:
        base_train, _ = split_examples(pairs)
        base_path, base_seconds = train(base_train, Path(tmp) / "serving", mode)
        new_pairs = pairs + [(t, "order_status") for t in ACCEPTED]
        new_train, holdout = split_examples(new_pairs)
        new_path, new_seconds = train(new_train, Path(tmp) / "retrained", mode)
        started = time.perf_counter()
        base, new = Predictor.load(base_path), Predictor.load(new_path)
        base_report, new_report = evaluate_on(base, holdout), evaluate_on(new, holdout)
        eval_seconds = time.perf_counter() - started
        print(
            f"data: {len(new_pairs)} examples, {len(data['intents'])} intents; "
            f"trained on {len(new_train)}, held out {len(holdout)}; mode {mode}"
        )
        print(
            f"train time: serving {base_seconds:.1f} s, retrained {new_seconds:.1f} s; "
            f"load both + evaluate both {eval_seconds:.1f} s"
        )
        for name, report in (("serving", base_report), ("retrained", new_report)):
            print(
                f"{name:10} accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
                f"misclassified {len(report['misclassified'])}"
            )
        for name, predictor in (("serving", base), ("retrained", new)):
            p = predictor.predict([MISUNDERSTOOD])[0]
            print(f"{name:10} {MISUNDERSTOOD!r} -> {p.intent} ({p.confidence:.2f})")
        problems = activation_problems(new_report, base_report)
        print("activation:", "allowed" if not problems else "refused: " + "; ".join(problems))


if __name__ == "__main__":
    main()

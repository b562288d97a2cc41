"""PII masking for training data: the product's light masker (chatbot/nlu/pii.py,
regular expressions with checks) against Microsoft Presidio, on one corpus.

    python bench/pii_masking.py [--presidio-python /path/to/venv/bin/python]

Presidio's recognisers for names and places come from a spaCy NER model
(en_core_web_lg by default) that is not published on PyPI, so it cannot be
installed from the package registries this product may use; Presidio runs here
with its pattern recognisers on a blank spaCy pipeline, plus the cost of spaCy
itself. Prints recall per kind, false alarms on clean sentences, speed, load time and
the memory the masker adds to a process (peak RSS over the process before it: for the
light masker, over a process with Django and the product already loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIRST = ["Anna", "John", "Maria", "Ahmed", "Chen", "Olivia", "Lukas", "Sofia", "David", "Grace"]
LAST = ["Schmidt", "Miller", "Garcia", "Khan", "Wang", "Brown", "Novak", "Rossi", "Smith", "Hopper"]
STREETS = ["Baker Street", "Main St", "Oak Avenue", "Elm Road", "Rue de la Paix", "Hauptstraße", "Park Lane"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009"]
CLEAN = [
    "Where is my order?",
    "I am waiting for a refund since Monday",
    "This is not what I ordered",
    "Can I change the delivery address?",
    "Do you ship to Germany?",
    "I'm trying to pay but the page reloads",
    "The Main Street store was closed",
    "Order 3 items, get 1 free?",
    "Thanks, that helped",
    "What are your opening hours on 12.03.2025?",
]


def corpus(seed: int = 7, per_kind: int = 200) -> list[dict]:
    """Texts with the values that must disappear, by kind; clean texts must stay as they are."""
    rng = random.Random(seed)
    rows = []
    for _ in range(per_kind):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        template = rng.choice(
            [
                "Hi, my name is {n} and my parcel is late",
                "this is {n}, I ordered last week",
                "Thanks, {n}",
                "{n} here, where is my refund?",  # no cue: hard for patterns
                "Please call Mr {l} back",
            ]
        )
        value = f"{first} {last}" if "{n}" in template else last
        rows.append({"kind": "name", "text": template.format(n=f"{first} {last}", l=last), "value": value.split()[-1]})
        number, street = rng.randint(1, 999), rng.choice(STREETS)
        address = f"{street} {number}" if street.endswith("straße") else f"{number} {street}"
        rows.append({"kind": "address", "text": f"please send it to {address}, thanks", "value": street.split()[0]})
        iban = rng.choice(IBANS)
        rows.append({"kind": "iban", "text": f"refund to {iban} please", "value": iban.replace(" ", "")[4:10]})
        card = rng.choice(CARDS)
        rows.append({"kind": "card", "text": f"my card {card} was charged twice", "value": card[-4:]})
        email = f"{first.lower()}.{last.lower()}@example.com"
        rows.append({"kind": "email", "text": f"write to {email}", "value": email.split("@")[0]})
        phone = f"+49 30 {rng.randint(1000000, 9999999)}"
        rows.append({"kind": "phone", "text": f"call me on {phone}", "value": phone[-7:]})
    rows += [{"kind": "clean", "text": text, "value": ""} for text in CLEAN * (per_kind // 10)]
    return rows


def score(rows: list[dict], masked: list[str]) -> dict:
    out: dict = {}
    for row, text in zip(rows, masked, strict=True):
        stats = out.setdefault(row["kind"], [0, 0])
        stats[1] += 1
        if row["kind"] == "clean":
            stats[0] += text != row["text"]  # false alarms
        else:
            stats[0] += row["value"].replace(" ", "") not in text.replace(" ", "")
    return {kind: round(hit / total, 3) for kind, (hit, total) in out.items()}


# Each masker runs in a fresh process, so its peak memory (VmHWM) is its own.
LIGHT = r"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
rows = json.load(sys.stdin)
started = time.perf_counter()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("DEBUG", "1")
import django
django.setup()
from chatbot.nlu.pii import mask_pii
load_s = time.perf_counter() - started
# The product's processes have Django loaded already: count only what masking adds.
base = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
started = time.perf_counter()
masked = [mask_pii(row["text"]) for row in rows]
elapsed = time.perf_counter() - started
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
json.dump({"masked": masked, "load_s": load_s, "texts_per_s": len(rows) / elapsed, "rss_mb": (peak - base) / 1024}, sys.stdout)
"""

PRESIDIO = r"""
import json, sys, tempfile, time
rows = json.load(sys.stdin)
base = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))
started = time.perf_counter()
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_anonymizer import AnonymizerEngine
blank = tempfile.mkdtemp()
spacy.blank("en").to_disk(blank)  # no NER model can be installed from PyPI
engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": blank}])
analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
anonymizer = AnonymizerEngine()
analyzer.analyze("warm up 4111 1111 1111 1111", language="en")
load_s = time.perf_counter() - started
started = time.perf_counter()
masked = []
for row in rows:
    found = analyzer.analyze(row["text"], language="en")
    masked.append(anonymizer.anonymize(text=row["text"], analyzer_results=found).text)
elapsed = time.perf_counter() - started
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
json.dump({"masked": masked, "load_s": load_s, "texts_per_s": len(rows) / elapsed, "rss_mb": (peak - base) / 1024}, sys.stdout)
"""


def run(python: str, code: str, rows: list[dict]) -> dict | None:
    result = subprocess.run(
        [python, "-c", code], input=json.dumps(rows), capture_output=True, text=True, timeout=1800, cwd=REPO
    )
    if result.returncode != 0:
        print(f"failed: {result.stderr.strip().splitlines()[-1] if result.stderr else '?'}")
        return None
    return json.loads(result.stdout)


def site_packages_mb(python: str) -> float | None:
    code = "import presidio_analyzer, spacy, os; print(os.path.dirname(os.path.dirname(spacy.__file__)))"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    total = 0
    for root, _, files in os.walk(result.stdout.strip()):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not os.path.islink(os.path.join(root, f)))
    return total / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presidio-python", help="a Python with presidio-analyzer and presidio-anonymizer installed")
    parser.add_argument("--per-kind", type=int, default=200)
    args = parser.parse_args()

    from bench.machine import describe

    print(f"machine: {describe()}")
    rows = corpus(per_kind=args.per_kind)
    print(f"corpus: {len(rows)} texts (names, addresses, IBANs, cards, emails, phones, clean sentences)")
    results = {"light (chatbot/nlu/pii.py)": run(sys.executable, LIGHT, rows)}
    if args.presidio_python:
        presidio = run(args.presidio_python, PRESIDIO, rows)
        if presidio is not None:
            size = site_packages_mb(args.presidio_python)
            presidio["install_mb"] = size
            results["presidio 2.2.366 (patterns, blank spaCy)"] = presidio
    print()
    kinds = ["name", "address", "iban", "card", "email", "phone"]
    print(f"{'masker':44} " + " ".join(f"{k:>7}" for k in kinds) + "  false-alarms  texts/s  load s  +MB")
    for name, result in results.items():
        recall = score(rows, result["masked"])
        print(
            f"{name:44} "
            + " ".join(f"{recall[k]:7.2f}" for k in kinds)
            + f"  {recall['clean']:12.2f}  {result['texts_per_s']:7.0f}  {result['load_s']:6.1f}  {result['rss_mb']:6.0f}"
        )
        if result.get("install_mb"):
            print(f"{'':44} installed size of the Python environment's site-packages: {result['install_mb']:.0f} MB")


if __name__ == "__main__":
    main()

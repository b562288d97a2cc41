"""Training data in and out of the database: CSV `text,intent`, JSONL, Rasa's
`nlu.yml` (version "3.1") and the store schema with responses (demo YAML).

An import is one transaction. A file that cannot be read as its format raises
ImportFailed and changes nothing; within a readable file, each example that
cannot be used is rejected with its line and the reason, the rest imported.
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.db import transaction

from chatbot.nlu.models import Intent, Response, TrainingExample

FORMATS = {
    "csv": "CSV (text,intent)",
    "jsonl": 'JSONL ({"text": ..., "intent": ...} a line)',
    "rasa": 'Rasa nlu.yml (version "3.1")',
    "yaml": "Store YAML (intents with examples and responses)",
}
MAX_TEXT = TrainingExample._meta.get_field("text").max_length
# Rasa entity annotations: "[Berlin](city)", "[Berlin]{"entity": "city"}".
RASA_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class ImportFailed(ValueError):
    """A file that cannot be imported; nothing was written."""


@dataclass
class ImportReport:
    added: int = 0
    skipped: int = 0
    intents_created: int = 0
    rejected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.skipped} skipped as duplicate, "
            f"{len(self.rejected)} rejected, {self.intents_created} new intents"
        )


def valid_intent_name(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isalnum() or c in "_-" for c in name)


# --- Import -----------------------------------------------------------------


def detect_format(filename: str, content: bytes) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".yml", ".yaml"):
        head = _decode(content)
        return "rasa" if re.search(r"^nlu\s*:", head, re.MULTILINE) else "yaml"
    raise ImportFailed(f"{filename}: unknown file type; use .csv, .jsonl, or .yml (Rasa nlu.yml or store YAML).")


def import_training_data(content: bytes, fmt: str, *, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    readers = {"csv": _csv_rows, "jsonl": _jsonl_rows, "rasa": _rasa_rows}
    if fmt == "yaml":
        return import_store_yaml(content, source=source)
    if fmt not in readers:
        raise ImportFailed(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    report = ImportReport()
    with transaction.atomic():
        for line, text, intent in readers[fmt](_decode(content), report):
            add_example(report, line, text, intent, source)
    return report


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportFailed(f"line {line}: the file is not UTF-8 text.") from exc


def add_example(report: ImportReport, line: int | None, text: str, intent_name: str, source: str) -> None:
    where = f"line {line}: " if line else ""
    text, intent_name = " ".join(text.split()), intent_name.strip()
    if not text:
        report.rejected.append(f"{where}empty text")
        return
    if len(text) > MAX_TEXT:
        report.rejected.append(f"{where}text longer than {MAX_TEXT} characters")
        return
    if not valid_intent_name(intent_name):
        report.rejected.append(f"{where}intent {intent_name!r} is not a valid name (letters, digits, _ or -)")
        return
    existing = TrainingExample.objects.filter(text=text).select_related("intent").first()
    if existing is not None:
        if existing.intent.name == intent_name:
            report.skipped += 1
        else:
            report.rejected.append(f"{where}{text!r} is already an example of intent {existing.intent.name!r}")
        return
    intent, created = Intent.objects.get_or_create(name=intent_name)
    report.intents_created += created
    TrainingExample.objects.create(intent=intent, text=text, source=source)
    report.added += 1


def _csv_rows(content: str, report: ImportReport):
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ImportFailed("The file is empty; the first line must be the header text,intent.") from None
    except csv.Error as exc:
        raise ImportFailed(f"line 1: not CSV ({exc}).") from exc
    if "text" not in header or "intent" not in header:
        raise ImportFailed("line 1: the first line must be the header text,intent.")
    text_col, intent_col = header.index("text"), header.index("intent")
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) <= max(text_col, intent_col):
                report.rejected.append(f"line {reader.line_num}: expected two columns text,intent")
                continue
            yield reader.line_num, record[text_col], record[intent_col]
    except csv.Error as exc:
        raise ImportFailed(f"line {reader.line_num}: not CSV ({exc}).") from exc


def _jsonl_rows(content: str, report: ImportReport):
    lines = content.splitlines()
    if not any(line.strip() for line in lines):
        raise ImportFailed("The file is empty.")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFailed(f"line {number}: not JSON ({exc.msg}).") from exc
        if not isinstance(row, dict):
            raise ImportFailed(f'line {number}: expected an object {{"text": ..., "intent": ...}}.')
        text, intent = row.get("text"), row.get("intent")
        if not isinstance(text, str) or not isinstance(intent, str):
            report.rejected.append(f"line {number}: text and intent must both be strings")
            continue
        yield number, text, intent


def _rasa_rows(content: str, report: ImportReport):
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ImportFailed(f"not YAML ({exc}).") from exc
    nlu = _mapping_value(root, "nlu")
    if not isinstance(nlu, yaml.SequenceNode):
        raise ImportFailed("Expected Rasa NLU data: a top-level 'nlu:' list of '- intent: ... examples: |' items.")
    for item in nlu.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            report.rejected.append(f"line {line}: an nlu item must be a mapping")
            continue
        keys = {key.value: value for key, value in item.value}
        if "intent" not in keys:
            kind = next(iter(keys), "item")
            report.rejected.append(f"line {line}: {kind} entries are not supported (only intents)")
            continue
        intent = keys["intent"].value if isinstance(keys["intent"], yaml.ScalarNode) else ""
        examples = keys.get("examples")
        if isinstance(examples, yaml.ScalarNode):
            # A literal block's lines are the file's lines, starting after the "|".
            first = examples.start_mark.line + (2 if examples.style in ("|", ">") else 1)
            for offset, raw in enumerate(examples.value.splitlines()):
                stripped = raw.strip()
                if not stripped:
                    continue
                if not stripped.startswith("-"):
                    report.rejected.append(f"line {first + offset}: expected '- example text'")
                    continue
                yield first + offset, RASA_ENTITY.sub(r"\1", stripped[1:]), intent
        elif isinstance(examples, yaml.SequenceNode):  # examples with metadata: "- text: ..."
            for entry in examples.value:
                text = _mapping_value(entry, "text")
                if isinstance(text, yaml.ScalarNode):
                    yield entry.start_mark.line + 1, RASA_ENTITY.sub(r"\1", text.value), intent
                else:
                    report.rejected.append(f"line {entry.start_mark.line + 1}: an example needs a text")
        else:
            report.rejected.append(f"line {line}: intent {intent!r} has no examples")


def _mapping_value(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def import_store_yaml(content: bytes, *, source: str = TrainingExample.Source.IMPORT) -> ImportReport:
    """Intents with description, handoff flag, examples and responses (the demo schema)."""
    try:
        data = yaml.safe_load(_decode(content))
    except yaml.YAMLError as exc:
        raise ImportFailed(f"not YAML ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("intents"), list):
        raise ImportFailed("Expected a mapping with a list under 'intents'.")
    report = ImportReport()
    with transaction.atomic():
        for number, item in enumerate(data["intents"], 1):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not valid_intent_name(name):
                raise ImportFailed(f"intent #{number} has no valid name (letters, digits, _ or -).")
            intent, created = Intent.objects.get_or_create(
                name=name,
                defaults={"description": str(item.get("description", ""))[:300], "handoff": bool(item.get("handoff"))},
            )
            report.intents_created += created
            for text in item.get("examples") or []:
                if not isinstance(text, str):
                    report.rejected.append(f"intent {name!r}: example {text!r} is not text")
                    continue
                add_example(report, None, text, name, source)
            if not intent.responses.exists():
                _add_responses(intent, item.get("responses") or [])
    return report


def _add_responses(intent: Intent, responses: list) -> None:
    for position, response in enumerate(responses):
        if not isinstance(response, dict) or not isinstance(response.get("text"), str):
            raise ImportFailed(f"intent {intent.name!r} response #{position + 1} has no text.")
        quick = response.get("quick_replies") or []
        if not isinstance(quick, list) or not all(isinstance(q, str) for q in quick):
            raise ImportFailed(f"intent {intent.name!r}: quick_replies must be a list of texts.")
        Response.objects.create(intent=intent, text=response["text"], quick_replies=quick, position=position)


# --- Export -----------------------------------------------------------------

CONTENT_TYPES = {
    "csv": ("text/csv", "csv"),
    "jsonl": ("application/jsonl", "jsonl"),
    "rasa": ("application/yaml", "yml"),
    "yaml": ("application/yaml", "yml"),
}


def _examples() -> list[tuple[str, str]]:
    return list(TrainingExample.objects.order_by("intent__name", "id").values_list("text", "intent__name"))


def export_training_data(fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["text", "intent"])
        writer.writerows(_examples())
        return out.getvalue()
    if fmt == "jsonl":
        return "".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n" for t, i in _examples())
    if fmt == "rasa":
        return _export_rasa()
    if fmt == "yaml":
        return _export_store_yaml()
    raise ValueError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def _export_rasa() -> str:
    lines = ['version: "3.1"', "nlu:"]
    current = None
    for text, intent in _examples():
        if intent != current:
            lines += [f"- intent: {intent}", "  examples: |"]
            current = intent
        lines.append(f"    - {' '.join(text.split())}")
    return "\n".join(lines) + "\n"


def _export_store_yaml() -> str:
    intents = []
    for intent in Intent.objects.prefetch_related("examples", "responses"):
        intents.append(
            {
                "name": intent.name,
                "description": intent.description,
                "handoff": intent.handoff,
                "examples": [e.text for e in intent.examples.all()],
                "responses": [{"text": r.text, "quick_replies": r.quick_replies} for r in intent.responses.all()],
            }
        )
    return yaml.safe_dump({"intents": intents}, allow_unicode=True, sort_keys=False, width=1000)

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
from defusedcsv import csv as defused_csv
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
        batch = ExampleBatch(report, source)
        for line, text, intent in readers[fmt](_decode(content), report):
            batch.add(line, text, intent)
        batch.flush()
    return report


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportFailed(f"line {line}: the file is not UTF-8 text.") from exc


# Examples are checked against the database and inserted this many at a time: a
# 100,000-line file costs a few hundred queries, not three per line (issue 13).
BATCH_SIZE = 1000


class ExampleBatch:
    """Collects checked examples and writes them in batches, in file order."""

    def __init__(self, report: ImportReport, source: str) -> None:
        self.report, self.source = report, source
        self.pending: list[tuple[str, str, str]] = []  # (where, text, intent name)

    def add(self, line: int | None, text: str, intent_name: str) -> None:
        where = f"line {line}: " if line else ""
        text, intent_name = " ".join(text.split()), intent_name.strip()
        if not text:
            self.report.rejected.append(f"{where}empty text")
        elif len(text) > MAX_TEXT:
            self.report.rejected.append(f"{where}text longer than {MAX_TEXT} characters")
        elif not valid_intent_name(intent_name):
            self.report.rejected.append(f"{where}intent {intent_name!r} is not a valid name (letters, digits, _ or -)")
        else:
            self.pending.append((where, text, intent_name))
            if len(self.pending) >= BATCH_SIZE:
                self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        known = dict(
            TrainingExample.objects.filter(text__in={text for _, text, _ in pending}).values_list(
                "text", "intent__name"
            )
        )
        new: list[tuple[str, str]] = []
        for where, text, intent_name in pending:
            if text in known:
                if known[text] == intent_name:
                    self.report.skipped += 1
                else:
                    self.report.rejected.append(f"{where}{text!r} is already an example of intent {known[text]!r}")
                continue
            known[text] = intent_name
            new.append((text, intent_name))
        intents = {i.name: i for i in Intent.objects.filter(name__in={name for _, name in new})}
        missing = sorted({name for _, name in new} - set(intents))
        for intent in Intent.objects.bulk_create([Intent(name=name) for name in missing]):
            intents[intent.name] = intent
        if any(intent.pk is None for intent in intents.values()):  # a database without RETURNING
            intents = {i.name: i for i in Intent.objects.filter(name__in=set(intents))}
        TrainingExample.objects.bulk_create(
            [TrainingExample(intent=intents[name], text=text, source=self.source) for text, name in new]
        )
        self.report.intents_created += len(missing)
        self.report.added += len(new)


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


class NoAliasLoader(yaml.SafeLoader):
    """Refuses YAML aliases (*name): nested ones expand exponentially ("billion
    laughs"), and training data never needs them (issue 13)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ImportFailed(f"line {mark.line + 1}: YAML aliases (*name) are not accepted in training data.")
        return super().compose_node(parent, index)


def _rasa_rows(content: str, report: ImportReport):
    try:
        root = yaml.compose(content, Loader=NoAliasLoader)
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
        data = yaml.load(_decode(content), Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ImportFailed(f"not YAML ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("intents"), list):
        raise ImportFailed("Expected a mapping with a list under 'intents'.")
    report = ImportReport()
    with transaction.atomic():
        batch = ExampleBatch(report, source)
        for number, item in enumerate(data["intents"], 1):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not valid_intent_name(name):
                raise ImportFailed(f"intent #{number} has no valid name (letters, digits, _ or -).")
            intent, created = Intent.objects.get_or_create(
                name=name,
                defaults={"description": _text(item.get("description"))[:300], "handoff": bool(item.get("handoff"))},
            )
            report.intents_created += created
            for text in item.get("examples") or []:
                if not isinstance(text, str):
                    report.rejected.append(f"intent {name!r}: example {text!r} is not text")
                    continue
                batch.add(None, text, name)
            if not intent.responses.exists():
                _add_responses(intent, item.get("responses") or [])
        batch.flush()
    return report


def _text(value: object) -> str:
    """A scalar as text; never the repr of a whole structure from an untrusted file."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    raise ImportFailed(f"expected text, found {type(value).__name__}.")


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
        # defusedcsv prefixes cells starting with = + - @ | % with a quote: a
        # spreadsheet opening the export must not run a visitor's text as a formula.
        writer = defused_csv.writer(out, lineterminator="\n")
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

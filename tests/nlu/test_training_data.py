"""Training data in and out: CSV, JSONL, Rasa nlu.yml and the store YAML;
reports of what was added, skipped and rejected; bad files change nothing."""

import io
import json

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.urls import reverse

from chatbot.nlu import training_data
from chatbot.nlu.models import Intent, TrainingExample
from chatbot.nlu.training_data import ImportFailed, export_training_data, import_training_data

pytestmark = pytest.mark.django_db

RASA = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - hello there
- intent: check_balance
  examples: |
    - how much is in my [savings](account) account
    - what's my balance
- synonym: savings
  examples: |
    - pink pig
- intent: greet
  examples: |
    - hey
"""


def snapshot() -> list[tuple[str, str]]:
    return sorted(TrainingExample.objects.values_list("text", "intent__name"))


def test_csv_import_reports_added_duplicates_and_rejected_lines():
    TrainingExample.objects.create(intent=Intent.objects.create(name="greeting"), text="hi")
    content = (
        b"text,intent\nhi,greeting\nwhere is my parcel,order_status\n,order_status\nhello,not valid!\nhi,goodbye\n"
    )
    report = import_training_data(content, "csv")
    assert (report.added, report.skipped, report.intents_created) == (1, 1, 1)
    assert report.rejected == [
        "line 4: empty text",
        "line 5: intent 'not valid!' is not a valid name (letters, digits, _ or -)",
        "line 6: 'hi' is already an example of intent 'greeting'",
    ]
    assert snapshot() == [("hi", "greeting"), ("where is my parcel", "order_status")]


def test_jsonl_import_reads_one_object_a_line():
    content = (
        b'{"text": "hi", "intent": "greeting"}\n\n{"text": "bye", "intent": "goodbye"}\n{"text": 3, "intent": "x"}\n'
    )
    report = import_training_data(content, "jsonl")
    assert report.added == 2 and report.rejected == ["line 4: text and intent must both be strings"]


def test_rasa_import_strips_entities_skips_synonyms_and_reports_lines():
    report = import_training_data(RASA.encode(), "rasa")
    assert snapshot() == [
        ("hello there", "greet"),
        ("hey", "greet"),
        ("how much is in my savings account", "check_balance"),
        ("what's my balance", "check_balance"),
    ]
    assert report.added == 4 and report.skipped == 1
    assert report.rejected == ["line 11: synonym entries are not supported (only intents)"]


def test_rasa_rejects_a_non_list_line_with_its_line_number():
    content = b'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hey\n    hello without a dash\n'
    report = import_training_data(content, "rasa")
    assert report.added == 1 and report.rejected == ["line 6: expected '- example text'"]


@pytest.mark.parametrize(
    ("fmt", "content", "reason"),
    [
        ("csv", b"words,label\nhi,greeting\n", "line 1: the first line must be the header text,intent."),
        ("csv", b"", "The file is empty"),
        ("csv", b"text,intent\nhi,greeting\n\xff\xfe broken\n", "line 3: the file is not UTF-8 text."),
        ("jsonl", b'{"text": "hi", "intent": "greeting"}\n{"text": "oops"\n', "line 2: not JSON"),
        ("jsonl", b'{"text": "hi", "intent": "greeting"}\n["a", "list"]\n', "line 2: expected an object"),
        ("rasa", b"nlu: [unclosed\n", "not YAML"),
        ("rasa", b'version: "3.1"\nnlu: just text\n', "Expected Rasa NLU data"),
        ("yaml", b"intents:\n  - name: ok\n    examples: [hi]\n  - name: 'bad name!'\n", "intent #2 has no valid name"),
    ],
)
def test_a_bad_file_changes_nothing(fmt, content, reason):
    import_training_data(b"text,intent\nhello,greeting\n", "csv")
    before = snapshot()
    with pytest.raises(ImportFailed) as failure:
        import_training_data(content, fmt)
    assert reason in str(failure.value)
    assert snapshot() == before
    assert set(Intent.objects.values_list("name", flat=True)) == {"greeting"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "rasa"])
def test_export_then_import_gives_back_the_same_examples(fmt, demo_intents):
    before = snapshot()
    exported = export_training_data(fmt)
    TrainingExample.objects.all().delete()
    report = import_training_data(exported.encode(), fmt)
    assert report.rejected == [] and report.added == len(before)
    assert snapshot() == before


def test_rasa_export_is_version_3_1_nlu_data(demo_intents):
    data = yaml.safe_load(export_training_data("rasa"))
    assert data["version"] == "3.1"
    greeting = next(item for item in data["nlu"] if item["intent"] == "greeting")
    assert "- hi\n" in greeting["examples"]


def test_store_yaml_export_keeps_responses_and_quick_replies(demo_intents):
    data = yaml.safe_load(export_training_data("yaml"))
    greeting = next(item for item in data["intents"] if item["name"] == "greeting")
    assert greeting["responses"][0]["quick_replies"]


def test_format_follows_the_file_name():
    assert training_data.detect_format("x.csv", b"") == "csv"
    assert training_data.detect_format("x.jsonl", b"") == "jsonl"
    assert training_data.detect_format("nlu.yml", RASA.encode()) == "rasa"
    assert training_data.detect_format("store.yaml", b"intents: []") == "yaml"
    with pytest.raises(ImportFailed):
        training_data.detect_format("x.docx", b"")


# --- Commands -------------------------------------------------------------------


def test_import_and_export_commands(tmp_path):
    source = tmp_path / "nlu.yml"
    source.write_text(RASA)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_intents", str(source), stdout=out, stderr=err)
    assert "4 added, 1 skipped as duplicate, 1 rejected, 2 new intents" in out.getvalue()
    assert "line 11" in err.getvalue()
    target = tmp_path / "out.jsonl"
    call_command("export_intents", "--format", "jsonl", "-o", str(target), stderr=io.StringIO())
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert {"text": "what's my balance", "intent": "check_balance"} in rows


def test_import_command_fails_on_a_bad_file_and_imports_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\nhi\n")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_intents", str(bad))
    assert not TrainingExample.objects.exists()


# --- Admin ------------------------------------------------------------------------


def test_admin_upload_shows_the_report(client, admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin)
    upload = SimpleUploadedFile("nlu.yml", RASA.encode())
    response = client.post(reverse("admin:nlu_intent_import"), {"file": upload, "format": ""})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<strong>4</strong> added" in body and "synonym entries are not supported" in body
    assert TrainingExample.objects.count() == 4


def test_admin_upload_of_a_bad_file_says_why_and_changes_nothing(client, admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin)
    response = client.post(
        reverse("admin:nlu_intent_import"), {"file": SimpleUploadedFile("x.csv", b"a,b\n1,2\n"), "format": ""}
    )
    assert "the first line must be the header text,intent" in response.content.decode()
    assert not TrainingExample.objects.exists()


def test_admin_export_downloads_a_file(client, admin, demo_intents):
    client.force_login(admin)
    response = client.get(reverse("admin:nlu_intent_export", args=["csv"]))
    assert response["Content-Disposition"] == 'attachment; filename="training-data.csv"'
    assert response.content.decode().startswith("text,intent\n")


def test_intent_changelist_counts_examples(client, admin, demo_intents):
    client.force_login(admin)
    response = client.get(reverse("admin:nlu_intent_changelist") + "?o=4")
    assert response.status_code == 200
    greeting = Intent.objects.get(name="greeting")
    assert f'<td class="field-example_count">{greeting.examples.count()}</td>' in response.content.decode()


def test_staff_without_permission_cannot_import(client, staff_without_perms):
    client.force_login(staff_without_perms)
    assert client.get(reverse("admin:nlu_intent_import")).status_code == 403

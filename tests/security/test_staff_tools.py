"""The staff's import and export of training data, and the audit log of what staff do."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chatbot.nlu.models import Intent, TrainingExample
from chatbot.nlu.training_data import ImportFailed, export_training_data, import_training_data

# Each level repeats the one before nine times: 278 bytes that PyYAML expands into millions of strings.
BILLION_LAUGHS = b"""intents:
- name: laughs
  description: &a9 [&a8 [&a7 [&a6 [&a5 [&a4 [&a3 [&a2 [&a1 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]]]]]]]]]
  examples: [*a9, *a9, *a9, *a9, *a9, *a9, *a9, *a9, *a9]
"""


def audit_entries():
    # Imported here, so that each test fails on its own on code without the audit log.
    from chatbot.audit.models import AuditEntry

    return AuditEntry.objects


def record(*args, **kwargs):
    from chatbot.audit.services import record

    return record(*args, **kwargs)


def test_a_yaml_alias_bomb_is_refused_before_it_expands(db):
    with pytest.raises(ImportFailed, match="aliases"):
        import_training_data(BILLION_LAUGHS, "yaml")
    assert not Intent.objects.exists()


def test_rasa_yaml_with_aliases_is_refused_too(db):
    content = b'version: "3.1"\nnlu:\n- intent: greet\n  examples: &ex |\n    - hi\n- intent: hello\n  examples: *ex\n'
    with pytest.raises(ImportFailed, match="aliases"):
        import_training_data(content, "rasa")


def test_a_structure_where_text_belongs_is_refused_not_stringified(db):
    content = b"intents:\n- name: greet\n  description: {nested: [1, 2, 3]}\n  examples: [hi]\n"
    with pytest.raises(ImportFailed, match="expected text"):
        import_training_data(content, "yaml")


@pytest.mark.parametrize("formula", ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"])
def test_the_csv_export_never_starts_a_cell_with_a_formula(db, formula):
    intent = Intent.objects.create(name="greet")
    TrainingExample.objects.create(intent=intent, text=formula)
    rows = list(csv.reader(io.StringIO(export_training_data("csv"))))
    assert rows[1][0] == "'" + formula


def _upload(client: Client, size: int):
    content = b"text,intent\n" + b"hello there,greet\n" * (size // 18 + 1)
    return client.post(reverse("admin:nlu_intent_import"), {"file": SimpleUploadedFile("big.csv", content[:size])})


def test_an_oversized_upload_is_refused_from_its_length_without_reading_it(admin, settings, monkeypatch):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100_000
    stored = []
    for handler in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        original = handler.receive_data_chunk
        monkeypatch.setattr(
            handler,
            "receive_data_chunk",
            lambda self, data, start, o=original: stored.append(len(data)) or o(self, data, start),
        )
    client = Client()
    client.force_login(admin)
    response = _upload(client, 300_000)
    assert response.status_code == 413 and "larger than" in response.content.decode()
    assert stored == [] and not TrainingExample.objects.exists()


def test_an_upload_that_grows_past_the_limit_is_cut_off_while_streaming(admin, settings, monkeypatch):
    from chatbot.nlu.admin import training_data as admin_module

    settings.IMPORT_MAX_UPLOAD_BYTES = 100_000
    monkeypatch.setattr(admin_module, "FORM_OVERHEAD_BYTES", 10_000_000)  # as if Content-Length said less
    stored = []
    original = MemoryFileUploadHandler.receive_data_chunk
    monkeypatch.setattr(
        MemoryFileUploadHandler,
        "receive_data_chunk",
        lambda self, data, start: stored.append(len(data)) or original(self, data, start),
    )
    client = Client()
    client.force_login(admin)
    response = _upload(client, 1_000_000)
    assert response.status_code == 413
    assert sum(stored) <= settings.IMPORT_MAX_UPLOAD_BYTES
    assert not TrainingExample.objects.exists()


def test_the_import_page_still_checks_csrf(admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert _upload(client, 1000).status_code == 403


def test_an_import_inserts_in_batches_not_row_by_row(db):
    content = "text,intent\n" + "".join(f"example number {i},intent_{i % 5}\n" for i in range(600))
    with CaptureQueriesContext(connection) as queries:
        report = import_training_data(content.encode(), "csv")
    assert report.added == 600 and report.intents_created == 5
    assert len(queries) < 30


def test_imports_and_exports_are_in_the_audit_log(admin):
    client = Client()
    client.force_login(admin)
    _upload(client, 500)
    client.get(reverse("admin:nlu_intent_export", args=["csv"]))
    actions = list(audit_entries().values_list("action", "actor_name"))
    assert ("training_data.import", "root") in actions and ("training_data.export", "root") in actions


def test_the_audit_log_is_read_only_in_the_admin(admin):
    entry = record(admin, "model.activate", "v3", version=3)
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/audit/auditentry/").status_code == 200
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert audit_entries().filter(pk=entry.pk).exists()

"""Every staff action leaves an entry in the audit log: model activations (forced ones
and rollbacks too), imports and exports, API token and webhook changes."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from chatbot.api import tokens
from chatbot.api.models import ApiToken
from chatbot.audit.models import AuditEntry
from chatbot.replies import services as replies
from chatbot.replies.models import ReplyModelVersion
from chatbot.webhooks.models import EventType, Subscription

pytestmark = pytest.mark.django_db

HELP_ARTICLE = b"---\ntitle: Shipping costs\nurl: https://shop.example/help/shipping\n---\n## Costs\n\nEUR 4.95.\n"


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


@pytest.fixture
def staff_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


# --- Models -----------------------------------------------------------------------------


def test_activating_forcing_and_rolling_back_a_model_are_recorded(admin, reply_artifact):
    first = ReplyModelVersion.objects.create(kind="retrieval", status="ready", artifact_dir=str(reply_artifact))
    replies.activate_version(first.pk, admin)
    (activated,) = entries("model.activate")
    assert (activated.actor_name, activated.target_id) == ("root", str(first.pk))
    assert activated.details["kind"] == "replies.replymodelversion"

    worse = ReplyModelVersion.objects.create(
        kind="retrieval",
        status="ready",
        artifact_dir=str(reply_artifact),
        report={"bleu": 10.0, "holdout": []},
        baseline_version=first,
        baseline_report={"bleu": 30.0, "holdout": []},
    )
    replies.activate_version(worse.pk, admin, force=True)
    (forced,) = entries("model.force_activate")
    assert forced.target_id == str(worse.pk) and forced.details["previous_version"] == first.pk
    assert "Forced past" in forced.details["note"]

    replies.reply_models.roll_back(first.pk, admin)
    (rolled_back,) = entries("model.rollback")
    assert rolled_back.target_id == str(first.pk) and rolled_back.details["previous_version"] == worse.pk


# --- API tokens -----------------------------------------------------------------------------


def test_api_token_creation_change_revocation_and_deletion_are_recorded(staff_client, admin, agent):
    staff_client.post(
        "/admin/api/apitoken/add/", {"name": "crm", "user": agent.pk, "scopes": ["read"], "expires_at": ""}
    )
    token = ApiToken.objects.get(name="crm")
    (created,) = entries("api_token.create")
    assert (created.actor_name, created.target_id, created.details["scopes"]) == ("root", str(token.pk), ["read"])

    staff_client.post(f"/admin/api/apitoken/{token.pk}/change/", {"name": "crm sync", "scopes": ["read"]})
    (changed,) = entries("api_token.change")
    assert changed.details["fields"] == ["Name"]

    staff_client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    (revoked,) = entries("api_token.revoke")
    assert revoked.actor_name == "root" and revoked.target_id == str(token.pk)

    staff_client.post(
        "/admin/api/apitoken/", {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"}
    )
    assert [e.target_id for e in entries("api_token.delete")] == [str(token.pk)]


def test_a_token_made_outside_the_admin_is_recorded_too(admin, agent):
    row, _ = tokens.create_token(name="script", user=agent, scopes=["read"], created_by=admin)
    tokens.revoke(row.pk, actor=admin)
    tokens.revoke(row.pk, actor=admin)  # already revoked: nothing more to record
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["api_token.create", "api_token.revoke"]


# --- Webhooks ---------------------------------------------------------------------------------


def test_webhook_creation_change_and_deletion_are_recorded_without_the_secret(staff_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    form = {
        "name": "crm",
        "url": "https://127.0.0.1:9/hook",
        "events": [EventType.CONVERSATION_CLOSED],
        "secret": "s3cret-value",
        "is_active": "on",
    }
    staff_client.post("/admin/webhooks/subscription/add/", form)
    subscription = Subscription.objects.get(name="crm")
    staff_client.post(f"/admin/webhooks/subscription/{subscription.pk}/change/", {**form, "secret": "n3w-secret"})
    staff_client.post(f"/admin/webhooks/subscription/{subscription.pk}/delete/", {"post": "yes"})
    actions = [(e.action, e.target_id) for e in AuditEntry.objects.order_by("id")]
    assert actions == [(f"webhook.{verb}", str(subscription.pk)) for verb in ("create", "change", "delete")]
    (changed,) = entries("webhook.change")
    assert changed.details["fields"] == ["Secret"]
    assert not AuditEntry.objects.filter(details__icontains="secret-value").exists()
    assert "n3w-secret" not in str(list(AuditEntry.objects.values()))


# --- Imports and exports -------------------------------------------------------------------------


def test_article_imports_in_the_admin_and_from_the_command_line_are_recorded(staff_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    staff_client.post("/admin/knowledge/article/import/", {"files": [SimpleUploadedFile("shipping.md", HELP_ARTICLE)]})
    (path := tmp_path / "returns.md").write_bytes(HELP_ARTICLE.replace(b"Shipping", b"Returns"))
    call_command("import_articles", str(path))
    call_command("export_articles", str(tmp_path / "out"))
    assert [(e.action, e.actor_name) for e in AuditEntry.objects.order_by("id")] == [
        ("knowledge.import", "root"),
        ("knowledge.import", ""),
        ("knowledge.export", ""),
    ]


def test_training_data_imports_and_exports_from_the_command_line_are_recorded(db, tmp_path):
    (path := tmp_path / "data.csv").write_text("text,intent\nwhere is my parcel,order_status\n")
    call_command("import_intents", str(path))
    call_command("export_intents", "--format", "csv", "-o", str(tmp_path / "out.csv"))
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["training_data.import", "training_data.export"]
    assert all(e.details["via"] == "manage.py" for e in AuditEntry.objects.all())


def test_report_exports_are_recorded(staff_client):
    assert staff_client.get(reverse("analytics:export", args=["summary"])).status_code == 200
    (exported,) = entries("analytics.export")
    assert (exported.actor_name, exported.target_repr) == ("root", "summary")

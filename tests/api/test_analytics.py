"""GET /api/v1/analytics/summary: the Reports page's headline figures over the API."""

from django.core.management import call_command

from tests.api.conftest import assert_problem


def test_the_summary_counts_the_same_conversations_as_the_reports(reader, db):
    from chatbot.analytics import reports

    call_command("seed_analytics", conversations=40, days=10, verbosity=0)
    response = reader.get("/api/v1/analytics/summary")
    assert response.status_code == 200, response.content
    body = response.json()
    expected = reports.summary(reports.Period.parse(None, None))[0]
    assert body["summary"]["conversations"] == expected["conversations"] > 0
    assert body["summary"]["resolution_rate"] == expected["resolution_rate"]
    assert set(body) == {"summary", "previous", "model_versions", "handoff_reasons"}
    assert sum(row["conversations"] for row in body["model_versions"]) <= body["summary"]["conversations"]


def test_a_bad_period_is_a_problem_document(reader, db):
    assert_problem(reader.get("/api/v1/analytics/summary", {"start": "yesterday"}), 400, "invalid_period")
    assert_problem(
        reader.get("/api/v1/analytics/summary", {"start": "2026-02-01", "end": "2026-01-01"}), 400, "invalid_period"
    )

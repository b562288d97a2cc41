"""The Reports page in a real browser against the real server, after
`seed_analytics`: a supervisor signs in, changes the date range, sees every chart
render (images load, no console errors) and downloads a CSV whose totals match the
page. Leaves test-artifacts/reports.png."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.analytics.conftest import supervisors_group
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser]


def test_supervisor_reads_reports_after_seeding(live_server_url, page):
    from django.contrib.auth import get_user_model

    call_command("seed_analytics", conversations=400, days=60, demo=True)
    supervisor = get_user_model().objects.create_user("sue", password="pw-sue", first_name="Sue")
    supervisor.groups.add(supervisors_group())
    errors: list[str] = []

    def on_console(message) -> None:
        # The browser's own favicon request is not the page's doing.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(live_server_url + "/agent/reports/")
    assert "/agent/reports/login/" in page.url
    page.fill("#id_username", "sue")
    page.fill("#id_password", "pw-sue")
    page.click("button[type=submit]")
    expect(page.locator(".demo-banner")).to_be_visible()

    # A new range: the last 45 days.
    end = date.today()
    start = end - timedelta(days=44)
    page.fill("input[name=start]", start.isoformat())
    page.fill("input[name=end]", end.isoformat())
    page.click("form.period button[type=submit]")
    page.wait_for_url(f"**start={start.isoformat()}**")
    expect(page.locator("input[name=start]")).to_have_value(start.isoformat())

    images = page.locator(".charts img")
    expect(images).to_have_count(6)
    page.wait_for_function("[...document.querySelectorAll('.charts img')].every(i => i.complete && i.naturalWidth > 0)")
    conversations = int(page.locator(".figure[data-key=conversations] .figure-value").inner_text())
    assert conversations > 100

    with page.expect_download() as download_info:
        page.locator("#table-outcomes_by_day a", has_text="CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(download_info.value.path(), encoding="utf-8").read())))
    assert len(rows) == 45
    assert sum(int(r["total"]) for r in rows) == conversations
    resolved = page.locator("#table-model_versions tbody tr")
    assert resolved.count() == 2  # two model versions in the range

    page.locator(".charts").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "reports")
    assert errors == []

    page.click("text=Top unanswered questions")
    expect(page.locator("tr.cluster").first).to_be_visible(timeout=60_000)
    assert errors == []

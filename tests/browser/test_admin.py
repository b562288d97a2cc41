"""The operator's loop in a real browser: log in to the admin, start a training
run, watch its progress, and read the evaluation report with its confusion matrix."""

import pytest
from playwright.sync_api import expect

from chatbot.nlu.models import ModelVersion
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_admin_trains_a_model_and_reads_its_report(page, live_server_url, admin):
    log_in(page, live_server_url, "root", "pw-root")
    page.goto(f"{live_server_url}/admin/nlu/modelversion/")
    page.click("#train-button")

    # The report page of the new version, live progress first.
    page.wait_for_selector(".training-progress progress")
    screenshot(page, "admin-training")
    version = ModelVersion.objects.exclude(is_active=True).get()
    assert version.created_by == admin

    # The page reloads itself when the run finishes.
    page.wait_for_selector("#confusion", timeout=300_000)
    # Not wait_for_function: it evaluates a string, which the admin's CSP (no 'unsafe-eval') forbids.
    expect(page.locator("#confusion")).to_have_js_property("complete", True)
    assert page.evaluate("document.getElementById('confusion').naturalWidth") > 0
    assert "ready" in page.inner_text("#version-status")
    headline = page.inner_text("#headline")
    assert "Macro-F1" in headline and "Accuracy" in headline
    assert page.locator("#per-intent tbody tr").count() >= 20
    screenshot(page, "admin-report")
    page.locator("#confusion").screenshot(path="test-artifacts/admin-confusion.png")

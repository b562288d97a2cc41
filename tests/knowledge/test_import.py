"""Importing the help center: folders, zips, HTML (sanitised), FAQs; a bad file is
reported by name and reason and nothing is half-imported; export round-trips."""

import io
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chatbot.knowledge import services
from chatbot.knowledge.models import Article, Passage
from tests.knowledge.conftest import HELP_CENTER

GOOD_MD = b"---\ntitle: Shipping costs\nurl: https://shop.example/help/shipping\n---\n## Costs\n\nStandard shipping is EUR 4.95.\n"
BAD_FRONT_MATTER = b"---\ntitle: [unclosed\n---\nText.\n"


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.django_db
def test_demo_help_center_folder_imports_with_passages():
    call_command("import_articles", str(HELP_CENTER))
    assert Article.objects.count() == len(list(HELP_CENTER.glob("*.md")))
    article = Article.objects.get(slug="refunds")
    assert article.title == "When will I get my refund?"
    assert article.url == "https://northwind.example/help/refunds"
    assert article.published and article.keywords
    assert article.passages.count() >= 1
    assert all(p.text for p in article.passages.all())


@pytest.mark.django_db
def test_reimporting_updates_instead_of_duplicating():
    services.import_articles([("shipping.md", GOOD_MD)])
    changed = GOOD_MD.replace(b"EUR 4.95", b"EUR 5.95")
    report = services.import_articles([("shipping.md", changed)])
    assert report.updated == ["shipping"] and not report.created
    assert Article.objects.count() == 1
    assert "EUR 5.95" in Passage.objects.get().text


@pytest.mark.django_db
def test_zip_of_markdown_and_html_imports_and_skips_other_files():
    html = b"<html><head><title>Returns</title></head><body><h2>Window</h2><p>30 days.</p></body></html>"
    data = zipped(
        {"help/shipping.md": GOOD_MD, "help/returns.html": html, "help/logo.png": b"\x89PNG", "__MACOSX/x.md": b""}
    )
    report = services.import_articles([("export.zip", data)])
    assert sorted(report.created) == ["returns", "shipping"]
    assert report.skipped == ["export.zip/help/logo.png"]
    assert Article.objects.get(slug="returns").body == "## Window\n\n30 days."


@pytest.mark.django_db
def test_a_bad_file_is_named_with_its_reason_and_nothing_is_imported():
    Article.objects.create(slug="keep", title="Kept", body="Unchanged text.")
    sources = [
        ("good.md", GOOD_MD),
        ("broken.md", BAD_FRONT_MATTER),
        ("latin1.md", "---\ntitle: Caf\xe9\n---\nText".encode("latin-1")),
        ("keep.md", b"---\ntitle: Changed\n---\nNew text."),
    ]
    with pytest.raises(services.ImportFailed) as exc:
        services.import_articles(sources)
    problems = dict(exc.value.problems)
    assert set(problems) == {"broken.md", "latin1.md"}
    assert "front matter is not valid YAML" in problems["broken.md"]
    assert "not UTF-8" in problems["latin1.md"]
    assert list(Article.objects.values_list("slug", "title")) == [("keep", "Kept")]
    assert Passage.objects.get().text == "Unchanged text."


@pytest.mark.django_db
def test_a_database_error_midway_leaves_nothing_behind(monkeypatch):
    calls = {"n": 0}
    original = Article.split_into_passages

    def fail_second(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        original(self)

    monkeypatch.setattr(Article, "split_into_passages", fail_second)
    other = GOOD_MD.replace(b"Shipping costs", b"Other")
    with pytest.raises(RuntimeError):
        services.import_articles([("a.md", GOOD_MD), ("b.md", other)])
    assert Article.objects.count() == 0


@pytest.mark.django_db
def test_hostile_html_is_sanitised():
    hostile = (
        b"<html><body><h1>Help</h1><p onclick='steal()'>Hi <script>alert(1)</script>there</p>"
        b"<img src=x onerror=alert(2)><a href='javascript:alert(3)'>click</a>"
        b"<a href='https://ok.example/page'>safe</a><iframe src='https://evil.example'></iframe>"
        b"<style>body{display:none}</style></body></html>"
    )
    services.import_articles([("evil.html", hostile)])
    article = Article.objects.get(slug="evil")
    body = article.body.lower()
    for bad in ("script", "alert", "onclick", "onerror", "javascript", "iframe", "evil.example", "display:none", "<"):
        assert bad not in body, bad
    assert "[safe](https://ok.example/page)" in article.body
    assert article.title == "Help"


def test_sanitize_html_keeps_structure_and_drops_what_runs():
    from inference.knowledge import sanitize_html

    clean = sanitize_html('<h2 style="x">T</h2><ul><li>a</li></ul><a href="https://a.example" onmouseover="x()">l</a>')
    assert clean.startswith("<h2>T</h2><ul><li>a</li></ul>")
    assert 'href="https://a.example"' in clean and "onmouseover" not in clean and "style" not in clean


@pytest.mark.django_db
def test_csv_and_jsonl_faqs_import_one_article_per_entry():
    csv_data = b'question,answer,url\nDo you ship to Canada?,"No, not yet.",https://shop.example/faq#canada\nIs there a phone line?,No.,\n'
    jsonl = b'{"question": "Gift wrap?", "answer": "Not offered.", "id": "gift-wrap"}\n'
    report = services.import_articles([("faq.csv", csv_data), ("more.jsonl", jsonl)])
    assert sorted(report.created) == ["1", "2", "gift-wrap"]
    canada = Article.objects.get(slug="1")
    assert (canada.title, canada.body, canada.url) == (
        "Do you ship to Canada?",
        "No, not yet.",
        "https://shop.example/faq#canada",
    )


@pytest.mark.django_db
def test_faq_without_an_answer_is_reported_with_its_line():
    with pytest.raises(services.ImportFailed) as exc:
        services.import_articles([("faq.csv", b"question,answer\nFirst?,Yes.\nSecond?,\n")])
    assert exc.value.problems == [("faq.csv", "line 3: question and answer must both be filled in")]
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_unsafe_url_and_missing_title_are_refused():
    sources = [("a.md", b"---\ntitle: A\nurl: javascript:alert(1)\n---\nText."), ("b.md", b"No title here.")]
    with pytest.raises(services.ImportFailed) as exc:
        services.import_articles(sources)
    problems = dict(exc.value.problems)
    assert "url must start with http:// or https://" in problems["a.md"]
    assert "no title" in problems["b.md"]


@pytest.mark.django_db
def test_command_reports_bad_files_and_fails(tmp_path, capsys):
    (tmp_path / "good.md").write_bytes(GOOD_MD)
    (tmp_path / "broken.md").write_bytes(BAD_FRONT_MATTER)
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_articles", str(tmp_path))
    assert "broken.md: front matter is not valid YAML" in capsys.readouterr().err
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_export_to_markdown_round_trips(tmp_path):
    call_command("import_articles", str(HELP_CENTER))
    Article.objects.filter(slug="refunds").update(published=False)
    before = {a.slug: (a.title, a.body, a.url, a.locale, a.keywords) for a in Article.objects.all()}
    call_command("export_articles", str(tmp_path / "out"))
    Article.objects.all().delete()
    call_command("import_articles", str(tmp_path / "out"))
    after = {a.slug: (a.title, a.body, a.url, a.locale, a.keywords) for a in Article.objects.all()}
    assert after == before


@pytest.mark.django_db
def test_published_articles_feed_the_index_builder():
    services.import_articles([("shipping.md", GOOD_MD)])
    Article.objects.create(slug="draft", title="Draft", body="Not yet.", published=False)
    (article,) = services.published_articles()
    assert (article.id, article.title, article.url) == (
        "shipping",
        "Shipping costs",
        "https://shop.example/help/shipping",
    )


@pytest.mark.django_db
def test_admin_upload_imports_a_zip(client, admin):
    client.force_login(admin)
    page = client.get("/admin/knowledge/article/")
    assert b"Import articles" in page.content
    upload = io.BytesIO(zipped({"shipping.md": GOOD_MD}))
    upload.name = "help.zip"
    response = client.post("/admin/knowledge/article/import/", {"files": [upload]}, follow=True)
    assert response.status_code == 200
    assert b"1 articles created" in response.content
    assert Article.objects.get().slug == "shipping"


@pytest.mark.django_db
def test_admin_upload_of_a_bad_file_shows_why_and_imports_nothing(client, admin):
    client.force_login(admin)
    good, bad = io.BytesIO(GOOD_MD), io.BytesIO(BAD_FRONT_MATTER)
    good.name, bad.name = "good.md", "broken.md"
    response = client.post("/admin/knowledge/article/import/", {"files": [good, bad]})
    # The admin capitalises messages ("Broken.md: ...").
    assert b"roken.md: front matter is not valid YAML" in response.content
    assert b"Nothing was imported." in response.content
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_admin_upload_is_closed_to_non_staff(client, stranger):
    client.force_login(stranger)
    response = client.post("/admin/knowledge/article/import/", {"files": []})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_demo_help_center_is_imported_once():
    report = services.import_demo_help_center()
    assert len(report.created) >= 25
    assert services.import_demo_help_center() is None

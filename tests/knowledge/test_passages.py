"""Splitting articles into passages: by headings, then paragraphs, about 60-200 words,
the title kept with each."""

from inference.knowledge import Article, split_article, split_sentences


def words(n: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}." if i % 12 == 11 else f"{stem}{i}" for i in range(n))


def test_each_heading_starts_a_passage_and_the_title_is_kept():
    body = f"## Shipping\n\n{words(80, 's')}\n\n## Returns\n\n{words(90, 'r')}"
    passages = split_article(Article("a", "Help", body, "https://x.example/a"))
    assert [p.heading for p in passages] == ["Shipping", "Returns"]
    assert all(p.title == "Help" and p.url == "https://x.example/a" for p in passages)
    assert passages[0].text.startswith("s0") and "r0" not in passages[0].text
    assert passages[1].search_text.startswith("Help. Returns.")


def test_paragraphs_are_packed_up_to_max_words_and_never_cut_midway():
    body = "\n\n".join(words(70, f"p{k}x") for k in range(5))  # five paragraphs of 70 words
    passages = split_article(Article("a", "T", body), min_words=60, max_words=200)
    assert [len(p.text.split()) for p in passages] == [140, 140, 70]
    for p in passages:
        assert p.text.split()[0].endswith("x0")  # every passage starts at a paragraph start


def test_a_paragraph_longer_than_max_words_is_cut_between_sentences():
    long = " ".join(f"Sentence number {i} has six words." for i in range(60))  # 360 words
    passages = split_article(Article("a", "T", long), min_words=60, max_words=200)
    assert len(passages) == 2
    assert all(len(p.text.split()) <= 200 for p in passages)
    assert all(p.text.endswith("words.") for p in passages)


def test_a_short_section_joins_the_next_and_keeps_its_heading_as_text():
    body = f"## Tiny\n\nJust a few words.\n\n## Big\n\n{words(100)}"
    passages = split_article(Article("a", "T", body), min_words=60, max_words=200)
    assert len(passages) == 1
    assert passages[0].text.startswith("Just a few words. Big. word0")


def test_a_list_stays_whole_and_markdown_is_removed():
    body = "Intro with a [link](https://x.example) and **bold** `code`.\n\n- first item\n- second item\n"
    (passage,) = split_article(Article("a", "T", body), min_words=1)
    assert passage.text == "Intro with a link and bold code. first item. second item."


def test_sentences_are_not_cut_inside_urls_or_order_numbers():
    text = "Go to https://northwind.example/track now. Order NW-123456.Tracking follows. Done!"
    assert split_sentences(text) == [
        "Go to https://northwind.example/track now.",
        "Order NW-123456.Tracking follows.",
        "Done!",
    ]


def test_every_demo_article_gives_passages_within_the_limits():
    from inference.knowledge import load_articles
    from tests.knowledge.conftest import HELP_CENTER

    articles = load_articles(HELP_CENTER)
    assert len(articles) >= 25
    for article in articles:
        assert article.url.startswith("https://")
        passages = split_article(article)
        assert passages, article.id
        assert all(len(p.text.split()) <= 200 for p in passages), article.id

"""Explain on a reranked card, end to end in a real browser: the cost is said first, nothing runs until asked,
then the passage shows with its sentences shaded and the query terms marked, a script in it as plain text."""

from __future__ import annotations

import json

import pytest

from tests.test_browser import SCREENSHOT, _search, _upload_and_build, page  # noqa: F401 - `page` is a fixture

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

TEA = ("Farmers ask where the rain goes. Green tea grows on steep hills in Yunnan. "
       "Bees hum <script>window.__pwned = 1</script> all summer.")


def test_explain_on_a_card_says_the_cost_then_shades_each_sentence(page, tmp_path):  # noqa: F811
    corpus = tmp_path / "tea.jsonl"
    corpus.write_text("\n".join(json.dumps(row) for row in (
        {"_id": "tea", "title": "Tea <b>farms</b>", "text": TEA},
        {"_id": "owls", "text": "Owls hunt at night. They fly without a sound."},
        {"_id": "rivers", "text": "The Rhine flows to the North Sea. Boats carry coal on it."},
    )) + "\n", encoding="utf-8")
    _upload_and_build(page, [corpus])
    _search(page, "where does green tea grow")
    card = page.locator("#column-rerank li.hit", has=page.locator(".passage-id", has_text="tea#0"))
    rank = card.get_attribute("data-rank")

    card.locator("button.explain-btn").click()
    cost = page.locator("#explain-cost .explain-cost")
    expect(cost).to_contain_text("tea#0: 3 sentences, each left out in turn", timeout=30_000)
    # The full passage, read with its title as the rerank read it, is in the score cache: it costs nothing.
    expect(cost).to_contain_text("3 extra pairs")
    assert cost.get_attribute("data-state") in ("measured", "unmeasured")
    expect(page.locator("#explain-passage input")).to_have_value(f"#{rank} · tea#0 · {TEA[:69]}…")
    assert page.locator("#explain-result .explain-part").count() == 0, "nothing runs before Explain is pressed"

    page.click("#explain-button")
    parts = page.locator("#explain-result .explain-passage .explain-part")
    expect(parts).to_have_count(3, timeout=120_000)
    assert parts.nth(1).inner_text() == "Green tea grows on steep hills in Yunnan."
    card_score = float(card.locator(".score").get_attribute("title").split()[-1])
    shown = float(page.inner_text("#explain-result .explain-head").split("score ")[1].split()[0])
    assert shown == pytest.approx(card_score, abs=1e-4), "the full score is the card's"
    drops = [float(parts.nth(i).get_attribute("data-drop")) for i in range(3)]
    assert drops[1] == max(drops) > 0, drops
    assert parts.nth(1).get_attribute("data-level") == "5" and "gain" in parts.nth(1).get_attribute("class")
    assert parts.nth(1).locator("mark").count() >= 2, "query terms are still highlighted"
    assert "<script>window.__pwned = 1</script>" in parts.nth(2).inner_text(), "the script shows as text"
    assert page.evaluate("window.__pwned === undefined"), "a corpus script ran"
    assert page.evaluate("document.querySelectorAll('#explain-result script').length") == 0
    expect(cost).to_have_attribute("data-state", "cached")  # explaining again costs nothing now
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.locator("#explain-panel").screenshot(path=str(SCREENSHOT.with_name("explain.png")))
    assert not page.errors, page.errors

"""The web page in headless Chromium against a real server: type a message and see the intent, open the explanation,
send a correction and find it in the feedback store, paste markup and see it shown but not run, watch the plots."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
from urllib.parse import urlsplit

import pytest

from live_server import MODEL, wait_until

try:
    from playwright.sync_api import expect  # its checks run in Playwright's own world, not under the page's CSP
except ImportError:
    expect = None
MISSING = "Playwright" if expect is None else None if shutil.which("chromium") or shutil.which("chromium-browser") else "Chromium"
if MISSING:  # checked before any fixture, so a machine without a browser skips at once instead of building the demo first
    how = "pip install -e '.[dev]'" if MISSING == "Playwright" else "apt-get install chromium"
    if os.environ.get("CI"): pytest.fail(f"{MISSING} is missing in CI: {how}.", pytrace=False)
    pytest.skip(f"{MISSING} is not installed ({how}): the web page is not checked in a browser.", allow_module_level=True)


MARKUP = '<img src=x onerror="window.__pwned = 1; alert(1)"> <script>window.__pwned = 2; alert(2)</script> refund'
PUBLIC = {"/ui", "/ui/watch", "/predict", "/explain", "/feedback", "/model", "/ready", "/monitor"}


def ask(page, text: str):
    "Open the Try page, type `text` and send it with Enter; wait for the answer."
    page.goto("/ui")
    page.fill("#message", text)
    page.press("#message", "Enter")
    expect(page.locator("#answer")).to_be_visible()


def test_typing_a_message_shows_its_intent(page, ui_server):
    text = "where is my parcel? it should have arrived yesterday"
    with ui_server.client() as client:
        expected = client.post("/predict", json={"text": text}).json()
    ask(page, text)
    expect(page.locator("#intent")).to_have_text(expected["intent"])
    expect(page.locator("#confidence-text")).to_have_text(f"{100 * expected['confidence']:.1f}% confident")
    expect(page.locator("#alternatives li .name")).to_have_text([alternative["intent"] for alternative in expected["top_k"]])
    expect(page.locator("#version")).to_have_text(expected["model_version"])
    expect(page.locator("#truncated")).to_be_hidden()
    assert re.fullmatch(r"[0-9a-f]{32}", page.text_content("#request-id"))
    assert page.watch.errors == [] and page.watch.dialogs == []


def test_a_long_message_says_it_was_truncated(page):
    ask(page, "my order never arrived and " * 200)
    expect(page.locator("#truncated")).to_be_visible()


def test_why_shades_each_word_by_its_attribution(page, ui_server):
    text = "I want a refund for my broken lamp"
    ask(page, text)
    intent = page.text_content("#intent")
    page.click("#why")
    expect(page.locator("#explain-body")).to_be_visible()
    with ui_server.client(timeout=120) as client:
        explained = client.post("/explain", json={"text": text, "target": intent}).json()
    words = page.locator("#words .word")
    expect(words).to_have_text([word["word"] for word in explained["words"]])
    for index, word in enumerate(explained["words"]):
        expected_class = "positive" if word["attribution"] >= 0 else "negative"
        assert expected_class in words.nth(index).get_attribute("class").split()
        colour = words.nth(index).evaluate("node => getComputedStyle(node).backgroundColor")
        assert colour.startswith("rgba(22, 163, 74" if expected_class == "positive" else "rgba(220, 38, 38"), colour
    strongest = max(explained["words"], key=lambda word: abs(word["attribution"]))["word"]
    expect(page.locator("#top-words li .name").first).to_have_text(strongest)
    expect(page.locator("#explained-label")).to_have_text(intent)


def feedback_rows(folder, request_id: str) -> list[tuple]:
    with sqlite3.connect(folder / "registry" / MODEL / "monitor.sqlite") as connection:
        return connection.execute("SELECT label, position, source FROM feedback WHERE request_id = ?", (request_id,)).fetchall()


def test_a_correction_reaches_the_feedback_store(page, ui_server, ui_folder):
    ask(page, "my card payment did not go through")
    predicted, request_id = page.text_content("#intent"), page.text_content("#request-id")
    with ui_server.client() as client:
        labels = client.get("/ui/api/labels").json()["labels"]
    right = next(label for label in labels if label != predicted)
    page.click("#wrong")
    expect(page.locator("#label-options .option")).to_have_count(min(len(labels), 8))
    typed = right.split("_")[0][:4]  # a few letters of the label's first word
    page.fill("#label-search", typed)
    shown = page.locator("#label-options .option").all_text_contents()
    assert right in shown and all(typed.lower() in label.lower() for label in shown), shown
    expect(page.locator("#send-correction")).to_be_disabled()
    page.locator("#label-options .option", has_text=re.compile(f"^{re.escape(right)}$")).click()
    page.click("#send-correction")
    expect(page.locator("#correction-status")).to_have_text(f"Stored: the right intent is {right} (the model said {predicted}). Thank you.")
    assert feedback_rows(ui_folder, request_id) == [(right, 0, "api")]


def test_markup_in_a_message_is_shown_as_text_and_never_runs(page):
    ask(page, MARKUP)
    expect(page.locator("#asked")).to_have_text(MARKUP)
    page.click("#why")
    expect(page.locator("#explain-body")).to_be_visible()
    expect(page.locator("#words")).to_contain_text('<img src=x onerror="window.__pwned')
    assert page.locator("main img, main script, main iframe").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.watch.dialogs == [] and page.watch.errors == []


def test_the_pages_ask_only_their_own_server_and_only_public_endpoints(page, ui_server):
    ask(page, "cancel my order please")
    page.click("#why")
    expect(page.locator("#explain-body")).to_be_visible()
    page.click("#wrong")
    expect(page.locator("#label-options .option").first).to_be_visible()
    page.goto("/ui/watch")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for _, url in page.watch.requests}
    assert origins == {ui_server.url}
    paths = {urlsplit(url).path for _, url in page.watch.requests}
    assert {path for path in paths if not path.startswith(("/ui/static/", "/ui/api/"))} <= PUBLIC, paths
    assert not any(path.startswith("/admin") for path in paths)
    assert {method for method, _ in page.watch.requests} <= {"GET", "POST"}


def test_the_watch_page_plots_traffic_latency_drift_and_feedback(page, ui_server):
    with ui_server.client() as client:
        answers = [client.post("/predict", json={"text": text}).json()
                   for text in ("where is my parcel?", "refund please", "I cannot log in", "cancel the order")]
        assert client.post("/feedback", json={"request_id": answers[0]["request_id"], "label": answers[0]["intent"]}).status_code == 200
        version = answers[0]["model_version"]
        wait_until(lambda: client.get("/ui/api/traffic").json()["answers"] >= 4, 10, "the answers in the traffic series")
    page.goto("/ui/watch")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("#readiness")).to_have_text("Ready: answering requests.")
    expect(page.locator("#model-facts dd").nth(1)).to_have_text(f"{version} (alias production)")
    bars = page.locator("#traffic-plot rect.bar")
    expect(bars).to_have_count(60)
    assert float(bars.nth(59).get_attribute("height")) > 0  # this minute's answers
    assert page.locator("#latency-plot circle.dot.p95").count() >= 1
    assert page.locator("#latency-plot path.line.p50").get_attribute("d").startswith("M")
    with ui_server.client() as client:
        scores = client.get("/monitor").json()["drift"]["scores"]
    expect(page.locator("#drift-table tbody td:first-child")).to_have_text(list(scores))
    graded = [name for name, score in scores.items() if isinstance(score.get("value"), (int, float)) and score.get("alert")]
    assert graded, scores  # a reference profile is attached and drift is judged from the first answer
    expect(page.locator("#drift-plot rect.bar")).to_have_count(len(graded))
    expect(page.locator("#feedback-plot rect.bar")).to_have_count(1)
    expect(page.locator("#feedback-plot text").first).to_have_text(version)
    assert page.watch.errors == []

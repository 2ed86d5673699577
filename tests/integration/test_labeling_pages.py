"""Each platform's labeling page in headless Chromium (Debian's ``chromium``, driven by
Playwright), as an annotator who signs in and opens the pushed project or dataset the
documented way: the first task shown is the highest-priority one, with the prompt, both
responses and the choice, a plain reason, and none of the machine's words.

Label Studio: Projects -> the project -> "Label All Tasks". Argilla: the dataset's
guidelines link (also printed by ``rlthf push``), which sorts by priority, descending;
the same page without it shows Argilla's per-user shuffle.
"""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa

from rlthf_plugin.backends.reasons import plain_reason
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.store import ledger as L

from .argilla_env import ANNOTATORS, OWNER_PASSWORD
from .conftest import add_asked_iteration
from .test_report import chromium

pytestmark = pytest.mark.integration

#: The issue's reason line: what a labeler must not see (machine words and numbers).
MACHINE_REASON = {"action": "ask", "region": "flip", "margin": -7.512, "rank": 2146, "n": 2147, "elbow": 200,
                  "knee": 1950, "reflection": 2138, "why": "from the right end leftwards (flip gate closed)"}
JARGON = re.compile(r"\b(flip|margin|elbow|knee|reflection|gate|rank \d+|priority \d+)\b", re.IGNORECASE)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def asked_with_machine_reason(ws, n: int = 12):
    """``n`` asked pairs with distinct priorities; the top one carries the issue's reason."""
    add_asked_iteration(ws.ledger, n, seed=11)
    top = asked_tasks(ws.ledger)[0]
    with ws.ledger.engine.begin() as conn:
        conn.execute(L.decisions.update().where(L.decisions.c.pair_id == top.pair.id)
                     .values(region="flip", reason=MACHINE_REASON))
    return asked_tasks(ws.ledger)


def first_words(text: str, n: int = 8) -> str:
    return " ".join(text.split()[:n])


def assert_first_task(body: str, top, plain: str) -> None:
    flat = " ".join(body.split())
    for text in (top.pair.prompt, top.pair.response_a, top.pair.response_b):
        assert first_words(text) in flat, f"not on the page: {first_words(text)!r}"
    assert plain in flat
    found = JARGON.findall(flat)
    assert not found, f"machine words on the labeling page: {found}"


def test_label_studio_page_shows_the_top_task_first(label_studio_env, label_studio_server, real_workspace, browser):
    env, server, ws = label_studio_env, label_studio_server, real_workspace
    tasks = asked_with_machine_reason(ws)
    env.configure(ws, name=f"browser-{uuid.uuid4().hex[:6]}")
    backend = env.backend(ws)
    sync.push(ws.ledger, backend, tasks[::-1], iteration=1)  # pushed lowest first: the order must not matter
    email, password = f"labeler-{uuid.uuid4().hex[:6]}@rlthf.test", "labeler-password-1"
    server.add_user(email, password)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/projects.*|.*/$"))
    page.goto(f"{server.url}/projects/{backend.target}/")
    page.get_by_text("Label All Tasks").first.click()
    page.get_by_text("Which response is better?").first.wait_for(timeout=60_000)
    page.get_by_text(first_words(tasks[0].pair.prompt, 5)).first.wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert_first_task(body, tasks[0], plain_reason(MACHINE_REASON))
    choice = " ".join(body.split()).split("Which response is better?", 1)[1]
    assert re.match(r"\s*A\W*1?\W*\s+B\W*2?\W*\s+tie\b", choice), choice[:80]  # the three choices (hotkeys 1-3)
    assert page.locator("input[type=radio]").count() == 3


def test_argilla_page_shows_the_top_record_first(argilla_env, argilla_server, real_workspace, browser):
    server, ws = argilla_server, real_workspace
    tasks = asked_with_machine_reason(ws)
    argilla_env.configure(ws, name=f"browser-{uuid.uuid4().hex[:6]}")
    backend = argilla_env.backend(ws)
    sync.push(ws.ledger, backend, tasks[::-1], iteration=1)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/sign-in")
    page.fill("input[name=Username]", ANNOTATORS[0][0])
    page.fill("input[type=password]", OWNER_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "sign-in" not in url)
    # The dataset as the home page opens it: a per-user shuffle, with the link in the guidelines.
    page.goto(f"{server.url}/dataset/{backend.dataset().id}/annotation-mode")
    page.get_by_text("Which response is better?").first.wait_for(timeout=60_000)
    link = page.locator("a[href*='sort=metadata.priority.desc']")
    if link.count() == 0:
        page.get_by_text("Guidelines", exact=False).first.click()
    assert link.first.get_attribute("href") == backend.annotation_url
    page.goto(backend.annotation_url)  # following the link (it may open a new tab)
    page.get_by_text(first_words(tasks[0].pair.prompt, 5)).first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    assert_first_task(body, tasks[0], plain_reason(MACHINE_REASON))
    for choice in ("A is better", "B is better", "Tie"):
        assert choice in body
    with ws.ledger.engine.connect() as conn:  # the machine reason is kept for operators
        assert conn.execute(sa.select(L.decisions.c.reason).where(
            L.decisions.c.pair_id == tasks[0].pair.id)).scalar() == MACHINE_REASON

"""`--show-ai` on a real Label Studio 1.23.2, as an annotator sees it in headless Chromium:
the AI label is pre-selected when the model thinks it is probably right (P > 0.5), and
not at all when it thinks it is probably wrong."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest

from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks

from .conftest import add_asked_iteration
from .test_labeling_pages import browser, first_words  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _checked_on_the_labeling_page(browser, server, project_id: str, prompt: str) -> list[str]:  # noqa: F811
    email, password = f"labeler-{uuid.uuid4().hex[:6]}@rlthf.test", "labeler-password-1"
    server.add_user(email, password)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/projects.*|.*/$"))
    page.goto(f"{server.url}/projects/{project_id}/")
    page.get_by_text("Label All Tasks").first.click()
    page.get_by_text("Which response is better?").first.wait_for(timeout=60_000)
    page.get_by_text(first_words(prompt, 5)).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the prediction is applied after the task renders
    radios = page.locator("input[type=radio]")
    return [radios.nth(i).get_attribute("value") or str(i) for i in range(radios.count()) if radios.nth(i).is_checked()]


@pytest.mark.parametrize("score, preselected", [(0.9, True), (0.3, False)])
def test_the_ai_label_is_preselected_only_when_probably_right(label_studio_env, label_studio_server, real_workspace,
                                                              browser, score, preselected):  # noqa: F811
    env, server, ws = label_studio_env, label_studio_server, real_workspace
    add_asked_iteration(ws.ledger, 1, seed=3)
    (task,) = list(asked_tasks(ws.ledger))
    task = dataclasses.replace(task, ai_label="A", ai_score=score)
    env.configure(ws, name=f"show-ai-{uuid.uuid4().hex[:6]}", show_predictions=True)
    backend = env.backend(ws)
    report = sync.push(ws.ledger, backend, [task], iteration=1)
    assert report.created == 1 and report.predictions == (1 if preselected else 0)
    checked = _checked_on_the_labeling_page(browser, server, backend.target, task.pair.prompt)
    assert (len(checked) == 1) == preselected, checked

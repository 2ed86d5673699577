"""Targets remembered by the workspace, on the real Label Studio 1.23.2: push once with
options, then pull / targets / serve without them; one webhook per normalised URL; a
second serve on a busy port stops before it talks to the platform."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.config import CONFIG_FILE, load_config

from .conftest import add_asked_iteration

pytestmark = pytest.mark.integration


def rlthf(runner, ws, *args):
    result = runner.invoke(main, ["--workspace", str(ws.root), *args], catch_exceptions=False)
    return result


def test_push_remembers_the_target_for_pull_targets_and_serve(label_studio_env, label_studio_server,
                                                              real_workspace, runner):
    env, server, ws = label_studio_env, label_studio_server, real_workspace
    ids = add_asked_iteration(ws.ledger, 3)
    env.configure(ws, name="unused")
    (ws.root / CONFIG_FILE).write_text("", encoding="utf-8")  # only the secrets file: the options say the rest
    name = f"targets-{uuid.uuid4().hex[:6]}"
    hook = "http://127.0.0.1:9/webhooks/label-studio"
    pushed = rlthf(runner, ws, "push", "--backend", "label-studio", "--url", server.url, "--create", name,
                   "--webhook-url", hook)
    assert pushed.exit_code == 0, pushed.output
    remembered = load_config(ws.root).label_studio
    assert (remembered.url, remembered.webhook_url) == (server.url, hook) and remembered.project is not None
    # The same webhook with a trailing slash: still one webhook.
    again = rlthf(runner, ws, "push", "--webhook-url", hook + "/")
    assert again.exit_code == 0 and "0 created, 3 already there" in again.output, again.output
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=30) as admin:
        hooks = admin.get("/api/webhooks/", params={"project": remembered.project}).json()
    assert len([h for h in hooks if h["url"].rstrip("/") == hook]) == 1

    listed = rlthf(runner, ws, "targets")
    assert listed.exit_code == 0 and f"label-studio: {server.url} project {remembered.project}, 3 pair(s) pushed" \
        in listed.output, listed.output
    env.annotate(env.backend(ws), ws.ledger.pushed("label-studio", str(remembered.project))[ids[0]], "B")
    pulled = rlthf(runner, ws, "pull")  # no option at all: the remembered target
    assert pulled.exit_code == 0 and "read 1 label(s), 1 new" in pulled.output, pulled.output

    # A busy port: serve stops at once, before any call to the platform.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        served = runner.invoke(main, ["--workspace", str(ws.root), "serve", "--backend", "label-studio",
                                      "--port", str(port)])
    assert served.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in served.output
    assert "--port" in served.output and time.monotonic() - started < 10
    assert "--url" not in served.output and "--create" not in served.output
    assert "--create" not in rlthf(runner, ws, "pull", "--help").output

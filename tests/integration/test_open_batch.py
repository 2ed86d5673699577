"""The open batch against a real Label Studio 1.23.2 and argilla-server 2.8: while `rlthf serve` waits for a pushed
batch, a manual `rlthf select` refuses naming it, `rlthf status` shows its progress, and
`rlthf abandon` closes it, removing its unlabeled tasks from the project or dataset."""

from __future__ import annotations

import json

import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.store.iterations import asked_pair_ids

from .conftest import ReceiverThread, wait_for
from .test_service import configure, env, small_workspace, state_of  # noqa: F401 - the fixtures

pytestmark = pytest.mark.integration


def test_a_manual_select_refuses_while_serve_waits_and_abandon_removes_the_open_tasks(
        env, small_workspace, runner):  # noqa: F811 - the fixtures
    ws, platform = small_workspace, env.platform
    w = ["--workspace", str(ws.root)]
    receiver = ReceiverThread(ws.root, backends=[platform])
    configure(env, ws, receiver, max_iterations=2)
    receiver.start()
    try:
        wait_for(lambda: state_of(ws, 0) == "pushed", timeout=300, what="iteration 0 pushed")
        backend = env.backend(ws)
        asked = asked_pair_ids(ws.ledger, 0)
        assert len(asked) >= 2 and env.remote_count(backend) == len(asked)
        out = runner.invoke(main, [*w, "select"])
        assert out.exit_code == 1 and "iteration 0's batch is pushed and waiting for labels" in out.output
        assert "`rlthf abandon 0`" in out.output and state_of(ws, 1) is None  # no orphaning iteration
        pushed = ws.ledger.pushed(platform, backend.target)
        env.annotate(backend, pushed[asked[0]], "A", annotator=1)
        wait_for(lambda: json.loads(runner.invoke(main, [*w, "status", "--json"]).output)["latest_progress"]
                 ["labeled"] == 1, timeout=60, what="the label through the webhook")
        progress = json.loads(runner.invoke(main, [*w, "status", "--json"]).output)["latest_progress"]
        assert (progress["state"], progress["pushed"], progress["pending"]) == ("pushed", len(asked), len(asked) - 1)
    finally:
        receiver.stop()  # the team stops the service and gives the batch up
    out = runner.invoke(main, [*w, "abandon", "0"])
    assert out.exit_code == 0, out.output
    assert f"iteration 0 abandoned: 1 answered; {len(asked) - 1} open task(s) removed ({len(asked) - 1})" \
        in out.output, out.output
    assert env.remote_count(backend) == 1 and state_of(ws, 0) == "labeled"

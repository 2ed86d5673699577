"""`push -> serve` with `[serve] stop_when` against a real Label Studio 1.23.2 (issue 21).

The README's chain as a user runs it, on the packaged demo data: `init`, `import`,
`select`, `push --create NAME --webhook-url URL`, then `rlthf serve` with no option (the
remembered target and port). A second user answers the pushed tasks through Label Studio's
API, so Label Studio fires its webhooks; the service stores the labels and closes the batch.
With `stop_when = "target"` and a small `selection.target_accuracy` it then pushes nothing
more and says why in /health (``loop``) and in its log; with `"never"` it pushes the next
batch.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import pytest

from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.store.iterations import asked_pair_ids
from rlthf_plugin.workspace import Workspace

from .conftest import free_port, wait_for
from .serve_helpers import (SERVE, fresh_name, get_json, iteration_ids, metric, platform_labels, rlthf,
                            serve_process, state_of, truth)

pytestmark = pytest.mark.integration

PLATFORM = "label-studio"
#: Small enough for the lower bound after one batch of the demo (about 0.55 on it), so the
#: stop is the service's doing, not a near miss of the estimate.
TARGET = 0.2


@pytest.mark.parametrize("stop_when", ["target", "never"])
def test_serve_stops_pushing_once_the_target_is_reached(label_studio_env, tmp_path, stop_when):
    env, root = label_studio_env, tmp_path / "ws"
    rlthf(root, "init")
    rlthf(root, "import", str(DEV_PAIRS), "--skip-invalid")
    update_config_file(root, "embedding", max_length=64)  # the demo's embedding, shorter: a CPU test
    update_config_file(root, "selection", target_accuracy=TARGET)
    update_config_file(root, "serve", **SERVE, stop_when=stop_when)
    port = free_port()
    hook = f"http://127.0.0.1:{port}/webhooks/{PLATFORM}"
    ws = Workspace.open(root)
    proc = None
    try:
        name = fresh_name("stop")
        env.configure(ws, name=name)  # the server's URL and the owner's API key; push says the rest
        rlthf(root, "select")
        out = rlthf(root, "push", "--backend", PLATFORM, "--create", name, "--webhook-url", hook)
        ws.config = load_config(root)
        backend = env.backend(ws)
        asked0 = asked_pair_ids(ws.ledger, 0)
        pushed = ws.ledger.pushed(PLATFORM, backend.target)
        on_server = env.remote_count(backend)
        assert f"{len(asked0)} created" in out and set(pushed) == set(asked0), out
        assert on_server == len(asked0) > 0

        proc = serve_process(ws)  # no option: the pushed target, on the webhook URL's port
        assert urlparse(ws.config.label_studio.webhook_url).port == port
        url = f"http://127.0.0.1:{port}"

        def health(loop: str) -> dict | None:
            body = get_json(f"{url}/health")
            return body if body and body.get("loop") == loop else None

        assert wait_for(lambda: health("running"), timeout=120, what="serve running the loop")["status"] == "ok"

        answers = truth(ws, asked0)
        for pid in asked0:  # a second user, through Label Studio's API: Label Studio sends the webhooks
            env.annotate(backend, pushed[pid], answers[pid], annotator=1)

        # (a) the labels: stored by the service (webhooks, read back from Label Studio), the batch closed.
        wait_for(lambda: state_of(ws, 0) == "labeled", timeout=300, what="iteration 0 labeled")
        labels = platform_labels(ws, PLATFORM)
        assert sorted(lab["pair_id"] for lab in labels) == sorted(asked0)
        assert {lab["pair_id"]: lab["label"] for lab in labels} == answers
        # Each label stored once: by its webhook, or by a reconcile pull that read it first (a busy machine).
        stored = {path: metric(url, "rlthf_labels_stored_total", path=path, platform=PLATFORM) or 0.0
                  for path in ("webhook", "pull")}
        assert sum(stored.values()) == len(asked0) and stored["webhook"] > 0, stored
        wait_for(lambda: metric(url, "rlthf_curated_accuracy", bound="low") is not None, timeout=60,
                 what="the curated accuracy on /metrics")
        # The target is reached in both runs: only stop_when differs.
        assert metric(url, "rlthf_curated_accuracy", bound="low") >= TARGET

        if stop_when == "target":
            # (b) /health and the log say the service stopped because the target was reached.
            stopped = wait_for(lambda: health("target_reached"), timeout=120, what="/health saying target_reached")
            assert stopped["status"] == "ok", stopped  # stopping on purpose is no error
            logged = (root / "serve.log").read_text(encoding="utf-8", errors="replace")
            assert "stops pushing batches ([serve] stop_when = target)" in logged, logged[-3000:]
            assert f"reached the target {TARGET:g}" in logged, logged[-3000:]
            assert metric(url, "rlthf_stop") == 1.0
            # (c) no new batch: several checks later, still one iteration and the same tasks.
            time.sleep(10 * SERVE["poll_seconds"])
            assert iteration_ids(ws) == [0] and state_of(ws, 0) == "labeled"
            assert env.remote_count(backend) == on_server
            assert health("target_reached")
            # A restarted service stays stopped: the verdict comes from the ledger, not from memory.
            proc.terminate()
            proc.wait(timeout=60)
            proc = serve_process(ws)
            wait_for(lambda: health("target_reached"), timeout=120, what="the restarted serve stopped at once")
            time.sleep(10 * SERVE["poll_seconds"])
            assert iteration_ids(ws) == [0] and env.remote_count(backend) == on_server
        else:
            wait_for(lambda: state_of(ws, 1) == "pushed", timeout=300, what="iteration 1 selected and pushed")
            asked1 = asked_pair_ids(ws.ledger, 1)
            assert asked1 and not set(asked1) & set(asked0)
            assert env.remote_count(backend) == on_server + len(asked1)
            assert health("running")
            logged = (root / "serve.log").read_text(encoding="utf-8", errors="replace")
            assert "stops pushing batches" not in logged
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        ws.close()
    # What the service recorded for `rlthf status` (after it stopped: the last state it saw).
    shown = json.loads(rlthf(root, "status", "--json", stdout_only=True))
    assert shown["service_health"]["loop"] == ("target_reached" if stop_when == "target" else "running")
    if stop_when == "target":
        assert f"reached the target {TARGET:g}" in shown["service_health"]["loop_detail"]

"""The open batch is owned: while an iteration is pushed and not labeled, `select`, `run`
and `label` refuse in one line naming it; `rlthf abandon` closes it."""

from __future__ import annotations

import gzip
import json

import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.config import Config
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.batch import abandon_batch, batch_progress, open_batch
from rlthf_plugin.store import ledger as L
from rlthf_plugin.store.iterations import iteration_rows
from rlthf_plugin.store.labels import store_human_labels


@pytest.fixture
def pushed(workspace, tmp_path):
    """Iteration 0 labeled, iteration 1 pushed to Label Studio project 7 (as `rlthf serve`
    leaves it), 6 tasks, 2 of them labeled."""
    rows = []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("ai_label") in ("A", "B") and r["prompt"].strip() and r["response_a"] != r["response_b"]:
                rows.append({k: r[k] for k in ("prompt", "response_a", "response_b", "ai_label")})
            if len(rows) == 30:
                break
    sample = tmp_path / "s.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_files(workspace.ledger, [str(sample)])
    ids = workspace.ledger.pair_ids()[:6]
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="labeled", params={}, stats={}, started_at=L.now()))
        conn.execute(L.iterations.insert().values(id=1, state="pushed", params={}, started_at=L.now(),
                                                  stats={"push": {"label-studio": {"target": "7", "state": "pushed"}}}))
        conn.execute(L.decisions.insert(), [
            {"iteration": 1, "pair_id": pid, "action": "ask", "region": "ask", "margin": 0.1, "rank": k,
             "priority": float(10 - k), "reason": {"region": "ask"}} for k, pid in enumerate(ids)])
    workspace.ledger.record_pushes("label-studio", "7", {pid: str(100 + k) for k, pid in enumerate(ids)}, 1)
    store_human_labels(workspace.ledger, [
        {"pair_id": ids[k], "label": "A", "annotator": "ann", "platform": "label-studio", "external_id": f"a{k}"}
        for k in range(2)])
    return workspace, ids


def test_select_run_and_label_refuse_while_a_batch_waits(pushed, runner):
    ws, _ = pushed
    w = ["--workspace", str(ws.root)]
    for args in (["select"], ["run", "--annotator", "oracle:human"], ["label", "--annotator", "oracle:human"]):
        out = runner.invoke(main, [*w, *args])
        assert out.exit_code == 1, out.output
        line = out.output.strip()
        assert "\n" not in line and "iteration 1's batch is pushed and waiting for labels" in line, line
        assert f"`rlthf {args[0]}` would leave it orphaned" in line and "`rlthf abandon 1`" in line
    assert [r["id"] for r in iteration_rows(ws.ledger)] == [0, 1]  # nothing started


def test_progress_and_abandon_with_the_tasks_kept(pushed, runner):
    ws, ids = pushed
    row = open_batch(ws.ledger)
    assert row["id"] == 1
    progress = batch_progress(ws.ledger, Config(), row)["label-studio"]
    assert (progress["pushed"], progress["labeled"], progress["pending"]) == (6, 2, 4)
    out = runner.invoke(main, ["--workspace", str(ws.root), "abandon", "1", "--keep-tasks"])
    assert out.exit_code == 0 and "iteration 1 abandoned: 2 answered; 4 open task(s) left on the platform" \
        in out.output, out.output
    row = iteration_rows(ws.ledger)[-1]
    assert row["state"] == "labeled" and row["stats"]["abandoned"]["open_tasks"] == {"label-studio": 4}
    assert row["stats"]["batch"]["answered"] == 2 and open_batch(ws.ledger) is None
    again = runner.invoke(main, ["--workspace", str(ws.root), "abandon", "1"])
    assert again.exit_code == 1 and "is labeled, not a pushed batch" in again.output


def test_abandon_removes_the_open_tasks_through_the_platform(pushed):
    ws, ids = pushed
    removed = []

    def remove(platform, target, external_ids):
        removed.append((platform, target, sorted(external_ids)))
        return len(external_ids)

    rep = abandon_batch(ws.ledger, Config(), 1, remove=remove)
    assert removed == [("label-studio", "7", ["102", "103", "104", "105"])] and rep.removed == 4


def test_status_shows_the_open_iteration_progress(pushed, runner):
    ws, _ = pushed
    w = ["--workspace", str(ws.root)]
    data = json.loads(runner.invoke(main, [*w, "status", "--json"]).output)
    assert data["latest_iteration"] == 1
    p = data["latest_progress"]
    assert (p["state"], p["asked"], p["pushed"], p["labeled"], p["pending"]) == ("pushed", 6, 6, 2, 4)
    assert p["per_platform"] == {"label-studio": {"target": "7", "pushed": 6, "labeled": 2, "pending": 4}}
    text = runner.invoke(main, [*w, "status"]).output
    assert "pushed: 6 asked, 6 pushed, 2 labeled, 4 pending; label-studio 7" in text, text

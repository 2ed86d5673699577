"""Calibration reads only the latest margin of the human-labeled pairs (issue 22): not every
decision row of every iteration."""

from __future__ import annotations

from rlthf_plugin.store import iterations as iterations_db
from rlthf_plugin.store import ledger as L


def test_latest_margins_reads_the_newest_decision_of_the_asked_pairs_only(workspace):
    pairs = [{"id": f"{k:032x}", "prompt_id": "p", "prompt": "q", "response_a": f"a{k}", "response_b": f"b{k}",
              "created_at": L.now()} for k in range(4)]
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.pairs.insert(), pairs)
        for it in (0, 1, 2):
            conn.execute(L.iterations.insert().values(id=it, state="labeled", params={}, stats={},
                                                      started_at=L.now()))
        rows = [{"iteration": it, "pair_id": p["id"], "action": "drop", "region": "none",
                 "margin": float(10 * it + k), "rank": k, "priority": 0.0, "reason": {}}
                for it in (0, 1) for k, p in enumerate(pairs)]
        rows.append({"iteration": 2, "pair_id": pairs[0]["id"], "action": "ask", "region": "suspect", "margin": None,
                     "rank": 0, "priority": 1.0, "reason": {"kind": "suspect"}})
        conn.execute(L.decisions.insert(), rows)
    got = iterations_db.latest_margins(workspace.ledger, [pairs[0]["id"], pairs[2]["id"], "unknown"])
    assert got == {pairs[0]["id"]: 10.0, pairs[2]["id"]: 12.0}  # a decision without a margin is skipped

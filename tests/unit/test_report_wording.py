"""The report's wording: a bad calibration fit is warned about (and gives no probability),
"drop" is called what it is, and one iteration's accuracy is a visible point."""

from __future__ import annotations

import gzip
import json

import numpy as np

from rlthf_plugin.config import Config
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.workspace_calibration import calibration_state, current_calibration
from rlthf_plugin.report.html import write_report
from rlthf_plugin.report.plots import plot_history
from rlthf_plugin.store import ledger as L
from rlthf_plugin.store.labels import store_human_labels


def _backwards_workspace(workspace, tmp_path):
    """60 asked pairs whose human answers go *against* the reward model's margin, and 20 dropped."""
    rows = []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("ai_label") in ("A", "B") and r["response_a"] != r["response_b"] and r["prompt"].strip():
                rows.append({k: r[k] for k in ("prompt", "response_a", "response_b", "ai_label")})
            if len(rows) == 80:
                break
    sample = tmp_path / "s.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_files(workspace.ledger, [str(sample)])
    ids = workspace.ledger.pair_ids()
    ai = workspace.ledger.ai_majority()
    margins = np.random.default_rng(2).normal(0, 3, len(ids))
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="labeled", params={}, stats={}, started_at=L.now()))
        conn.execute(L.decisions.insert(), [
            {"iteration": 0, "pair_id": pid, "action": "ask" if k < 60 else "drop", "region": "ask", "margin": float(m),
             "rank": k, "priority": float(k), "reason": {"region": "ask"}} for k, (pid, m) in enumerate(zip(ids, margins))])
    rng = np.random.default_rng(3)
    answers = []
    for k, (pid, m) in enumerate(zip(ids[:60], margins[:60])):
        agree = rng.random() < 1 / (1 + np.exp(m))  # a higher margin: the AI label is *less* often right
        other = "B" if ai[pid].label == "A" else "A"
        answers.append({"pair_id": pid, "label": ai[pid].label if agree else other, "annotator": "ann",
                        "platform": "label-studio", "external_id": f"x{k}"})
    store_human_labels(workspace.ledger, answers)
    return workspace


def test_a_negative_slope_is_warned_about_and_gives_no_probability(workspace, tmp_path):
    ws = _backwards_workspace(workspace, tmp_path)
    fit, problem = calibration_state(ws.ledger, Config())
    assert fit is not None and fit.slope < 0 and "non-positive slope" in problem
    assert current_calibration(ws.ledger, Config()) is None  # no score rather than a misleading one
    text = write_report(ws.ledger, Config(), tmp_path / "report").read_text(encoding="utf-8")
    assert "Warning:" in text and "non-positive slope" in text


def test_drop_is_called_the_ai_label_kept_unverified(workspace, tmp_path):
    ws = _backwards_workspace(workspace, tmp_path)
    text = write_report(ws.ledger, Config(), tmp_path / "report").read_text(encoding="utf-8")
    assert "<th title='drop'>unverified</th>" in text and "<th>drop</th>" not in text
    assert "unverified: the AI label kept, unverified" in text


def test_one_iteration_is_a_visible_point_with_a_legend_line(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    closed = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: closed.append(fig) or real_close(fig))
    plot_history([{"iteration": 0, "precision": 0.4, "curated_accuracy": 0.9, "ai_accuracy": 0.85}],
                 tmp_path / "h.png")
    right = closed[0].axes[1]
    assert right.get_xlim() == (-0.5, 0.5)  # the point in the middle, not clipped at an edge
    for line in right.get_lines():  # every series is a marker, which the legend shows too
        assert line.get_marker() not in (None, "None", "", " "), line.get_label()
    handles = right.get_legend().legend_handles
    assert [h.get_label() for h in handles] == ["curated labels", "AI labels only"]
    assert all(h.get_marker() not in (None, "None", "", " ") for h in handles)

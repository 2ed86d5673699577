"""Platt calibration of margins on human labels, and the calibrated AI-label scores pushed."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from rlthf_plugin.config import Config
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.workspace_calibration import current_calibration, labeled_margins
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.selection.calibration import fit_platt, reliability
from rlthf_plugin.store import ledger as L
from rlthf_plugin.store.labels import store_human_labels


def test_platt_recovers_the_scale_of_an_overconfident_margin():
    rng = np.random.default_rng(0)
    margins = rng.normal(0, 8, 4000)  # an unscaled margin: sigmoid(margin) would be overconfident
    a_better = rng.random(4000) < 1 / (1 + np.exp(-0.25 * margins))
    cal = fit_platt(margins, a_better)
    assert cal.slope == pytest.approx(0.25, rel=0.15) and abs(cal.intercept) < 0.15 and cal.n == 4000
    mean, frac, counts = reliability(cal.probability(margins), a_better)
    assert np.abs(mean - frac)[counts >= 100].max() < 0.06  # calibrated: points near the diagonal
    raw_mean, raw_frac, raw_counts = reliability(1 / (1 + np.exp(-margins)), a_better)
    assert np.abs(raw_mean - raw_frac)[raw_counts >= 100].max() > 0.1  # the raw sigmoid is not
    assert fit_platt(margins[:5], a_better[:5]) is None  # too few labels
    assert fit_platt(margins[:50], np.ones(50, dtype=bool)) is None  # one answer only
    with pytest.raises(ValueError, match="same length"):
        fit_platt(margins[:3], a_better[:4])


@pytest.fixture
def labeled(workspace, tmp_path):
    rows = []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("ai_label") in ("A", "B") and r["response_a"] != r["response_b"] and r["prompt"].strip():
                rows.append(r)
            if len(rows) == 60:
                break
    sample = tmp_path / "s.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_files(workspace.ledger, [str(sample)])
    ids = workspace.ledger.pair_ids()
    ai = workspace.ledger.ai_majority()
    rng = np.random.default_rng(1)
    margins = rng.normal(0, 3, len(ids))
    with workspace.ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=1, state="asked", params={}, stats={}, started_at=L.now()))
        conn.execute(L.decisions.insert(), [
            {"iteration": 1, "pair_id": pid, "action": "ask", "region": "ask", "margin": float(m), "rank": k,
             "priority": float(k), "reason": {"region": "ask"}} for k, (pid, m) in enumerate(zip(ids, margins))])
    # Humans agree with the AI label where the AI-oriented margin is high.
    answers = []
    for k, (pid, m) in enumerate(zip(ids, margins)):
        agree = rng.random() < 1 / (1 + np.exp(-m))
        other = "B" if ai[pid].label == "A" else "A"
        answers.append({"pair_id": pid, "label": ai[pid].label if agree else other, "annotator": "ann",
                        "platform": "label-studio", "external_id": f"x{k}"})
    store_human_labels(workspace.ledger, answers)
    return workspace, ids, margins


def test_calibration_from_the_ledger_scores_the_pushed_ai_labels(labeled):
    ws, ids, margins = labeled
    m, y = labeled_margins(ws.ledger, Config())
    assert m.shape == y.shape and m.size > 40
    cal = current_calibration(ws.ledger, Config())
    assert cal is not None and cal.slope > 0
    tasks = asked_tasks(ws.ledger, 1, calibration=cal)
    assert all(t.model_version == f"rlthf-iter1-{cal.tag}" for t in tasks)
    by_margin = sorted((t.margin, t.ai_score) for t in tasks)
    assert all(0 < s < 1 for _, s in by_margin)
    assert by_margin[-1][1] > 0.5 > by_margin[0][1]  # a high AI-oriented margin: the AI label is likely right
    assert all(t.ai_score is None for t in asked_tasks(ws.ledger, 1))  # no calibration given: no score
    # Labels from a ground-truth platform do not calibrate (they evaluate).
    truth = Config()
    truth.selection.ground_truth = "import,label-studio"
    assert current_calibration(ws.ledger, truth) is None


def test_report_shows_the_reliability_diagram(labeled, tmp_path):
    from rlthf_plugin.report.html import write_report

    ws, _, _ = labeled
    page = write_report(ws.ledger, Config(), tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    assert "reliability.png" in text and (tmp_path / "report" / "reliability.png").stat().st_size > 5000
    assert "Platt scaling" in text and "human-labeled pairs" in text


def test_status_and_export_keep_the_machine_reason(labeled, runner):
    from rlthf_plugin.cli import main
    from rlthf_plugin.io.export import curated_rows

    ws, ids, _ = labeled
    out = runner.invoke(main, ["--workspace", str(ws.root), "status", "--pair", ids[0]])
    assert out.exit_code == 0 and "iteration 1: ask · priority 0 · region ask" in out.output, out.output
    assert runner.invoke(main, ["--workspace", str(ws.root), "status", "--pair", "nope"]).exit_code == 1
    with ws.ledger.engine.begin() as conn:  # the iteration finished: the export reads its decisions
        conn.execute(L.iterations.update().values(state="labeled"))
    rows = {r["pair_id"]: r for r in curated_rows(ws.ledger)}
    assert rows[ids[0]]["reason"] == {"region": "ask"}

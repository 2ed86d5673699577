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
from rlthf_plugin.selection.calibration import (calibration_problem, fit_platt, out_of_fold_probability,
                                                 reliability)
from rlthf_plugin.store import ledger as L
from rlthf_plugin.store.labels import store_human_labels


def test_platt_recovers_the_scale_of_an_overconfident_margin():
    rng = np.random.default_rng(0)
    margins = rng.normal(0, 8, 4000)  # an unscaled margin: sigmoid(margin) would be overconfident
    a_better = rng.random(4000) < 1 / (1 + np.exp(-0.25 * margins))
    cal = fit_platt(margins, a_better)
    assert cal.slope == pytest.approx(0.25, rel=0.15) and cal.intercept == 0.0 and cal.n == 4000
    mean, frac, counts = reliability(cal.probability(margins), a_better)
    assert np.abs(mean - frac)[counts >= 100].max() < 0.06  # calibrated: points near the diagonal
    raw_mean, raw_frac, raw_counts = reliability(1 / (1 + np.exp(-margins)), a_better)
    assert np.abs(raw_mean - raw_frac)[raw_counts >= 100].max() > 0.1  # the raw sigmoid is not
    assert fit_platt(margins[:5], a_better[:5]) is None  # too few labels
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


def test_the_fit_has_no_position_term_and_mirrors_both_orders():
    """Human batches that happen to favour A (a biased sample) do not teach the fit to say A:
    the probability for (A, B) is the mirror of the one for (B, A)."""
    rng = np.random.default_rng(3)
    margins = rng.normal(0, 2, 300)
    a_better = (rng.random(300) < 1 / (1 + np.exp(-margins))) | (rng.random(300) < 0.5)  # mostly A
    cal = fit_platt(margins, a_better)
    assert cal.intercept == 0.0 and cal.monotone
    p = cal.probability(margins)
    assert np.allclose(p, 1.0 - cal.probability(-margins))
    assert ((p >= 0.5) == (margins >= 0)).all()  # the choice is the reward model's own


def test_a_non_monotone_fit_or_too_few_labels_gives_no_probability_and_says_why():
    rng = np.random.default_rng(4)
    margins = rng.normal(0, 2, 60)
    backwards = rng.random(60) < 1 / (1 + np.exp(margins))  # a higher margin for A makes A *less* likely
    cal = fit_platt(margins, backwards)
    assert cal is not None and cal.slope < 0 and not cal.monotone
    assert "non-positive slope" in calibration_problem(cal, 60)
    assert "fewer than the 20" in calibration_problem(None, 5)
    assert calibration_problem(fit_platt(margins, ~backwards), 60) is None


def test_out_of_fold_probabilities_come_from_fits_without_the_pair():
    rng = np.random.default_rng(5)
    margins = rng.normal(0, 2, 100)
    y = rng.random(100) < 1 / (1 + np.exp(-margins))
    oof = out_of_fold_probability(margins, y)
    assert np.isfinite(oof).all() and not np.allclose(oof, fit_platt(margins, y).probability(margins))
    assert ((oof >= 0.5) == (margins >= 0)).all()


def test_report_shows_the_reliability_diagram(labeled, tmp_path):
    from rlthf_plugin.report.html import write_report

    ws, _, _ = labeled
    page = write_report(ws.ledger, Config(), tmp_path / "report")
    text = page.read_text(encoding="utf-8")
    assert "reliability.png" in text and (tmp_path / "report" / "reliability.png").stat().st_size > 5000
    assert "Platt scaling" in text and "human-labeled pairs" in text and "out of fold" in text
    assert "Warning" not in text


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

"""The judge cascade in the loop: a recorded strong judge asked only on the escalated pairs
(counted), settling tie_inconsistent labels, resuming after a kill, its cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from click.testing import CliRunner

from rlthf_plugin.backends.local import LocalBackend
from rlthf_plugin.cli import main
from rlthf_plugin.report.html import write_report
from rlthf_plugin.service.worker import Worker
from rlthf_plugin.errors import JudgeError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.escalation import escalate, spend
from rlthf_plugin.loop.iteration import select_iteration
from rlthf_plugin.loop.oracle import label_with_oracle
from rlthf_plugin.loop.pool import read_pool
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.judge.recorded import RecordedJudge
from rlthf_plugin.models.reward import EmbeddingRewardModel
from rlthf_plugin.store import ledger as L

from ._synthetic_pairs import judged_pair

N = 50
STRONG = "strong-judge"


def _data(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(merged rows: a weak primary in both orders + the human label; a recorded file of a
    strong judge on every pair in both orders). Every 10th primary contradicts itself; one says tie."""
    rng = np.random.default_rng(seed)
    rows, strong = [], []
    for i in range(N):
        base, truth, other = judged_pair(rng, i, f"The answer to question {i} is {i * 7}.",
                                         f"Maybe {i}, I do not know.", f"Question {i}: what is {i} times 7?")
        a, b = base["response_a"], base["response_b"]
        prim = other if rng.random() < 0.3 else truth
        ba = other if i % 10 == 0 and prim == truth else (truth if i % 10 == 0 else prim)
        if i == 5:  # a judge's tie in both orders: no winner either
            prim = ba = "tie"
        rows += [{**base, "ai_judge": "weak", "ai_order": "ab", "ai_label": prim},
                 {**base, "ai_judge": "weak", "ai_order": "ba", "ai_label": ba}]
        s = truth if rng.random() < 0.9 else other
        # The recorded file lists every other pair the other way round (its own A/B terms).
        flip = i % 2 == 1
        ra, rb, lab = (b, a, {"A": "B", "B": "A"}[s]) if flip else (a, b, s)
        strong += [{"prompt": base["prompt"], "response_a": ra, "response_b": rb, "ai_label": lab, "ai_order": o,
                    "ai_judge": STRONG} for o in ("ab", "ba")]
    return rows, strong


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def cascade_ws(workspace, tmp_path):
    rows, strong = _data()
    import_files(workspace.ledger, [str(_write(tmp_path / "pairs.jsonl", rows))])
    verdicts = _write(tmp_path / "strong.jsonl", strong)
    cfg = workspace.config
    cfg.selection.budget = 0.1
    cfg.selection.folds = 3
    cfg.selection.primary_judge = "weak"
    cfg.escalation.judges = f"recorded:{verdicts}"
    cfg.escalation.budgets = [0.2]
    cfg.cost.human_label = 2.0
    cfg.cost.judge_call = [0.01]
    return workspace, verdicts


def _strong_answers(ledger) -> list[tuple[str, str]]:
    with ledger.engine.connect() as conn:
        q = sa.select(L.ai_labels.c.pair_id, L.ai_labels.c.order).where(
            L.ai_labels.c.judge == STRONG, L.ai_labels.c.order.in_(["ab", "ba"]))
        return [tuple(r) for r in conn.execute(q)]


def test_iteration_asks_the_recorded_judge_only_on_escalated_pairs(cascade_ws):
    ws, verdicts = cascade_ws
    cfg = ws.config
    before = read_pool(ws.ledger, cfg)
    inconsistent = {p.id for p, a in zip(before.pairs, before.ai) if a == "tie_inconsistent"}
    assert len(inconsistent) == N // 10
    tie = {p.id for p, a in zip(before.pairs, before.ai) if a == "tie"}
    assert len(tie) == 1
    judge = RecordedJudge(verdicts)
    factory = EmbeddingRewardModel(SentenceEmbedder(max_length=32), ledger=ws.ledger, epochs=20).spawn
    rep = select_iteration(ws.ledger, cfg, factory=factory, judges=[judge])
    budget = round(0.2 * N)
    asked = _strong_answers(ws.ledger)
    # Counted: two calls per escalated pair, every call stored, nothing else asked.
    assert judge.calls == 2 * budget == len(asked) == len(set(asked))
    escalated = {pid for pid, _ in asked}
    assert inconsistent | tie <= escalated  # pairs without a winner go first
    esc = rep.stats["escalation"]
    assert esc["calls"] == 2 * budget and esc["judges"][0]["judge"] == STRONG
    # The strong judge settled them: none is left for the tie share; it is the label judge there.
    assert rep.stats["inconsistent"] == 0 and rep.stats["settled"][STRONG] >= len(inconsistent)
    after = read_pool(ws.ledger, cfg)
    assert {p.id for p, j in zip(after.pairs, after.label_judge) if j == STRONG} <= escalated
    # The next iteration asks the judge only on new pairs, within its budget again.
    label_with_oracle(ws.ledger, cfg, "oracle:human", iteration=rep.iteration)
    select_iteration(ws.ledger, cfg, factory=factory, judges=[judge])
    again = _strong_answers(ws.ledger)
    assert len(again) == len(set(again)) == judge.calls == 4 * budget
    # Spend: human labels and judge calls per iteration, priced by [cost].
    rows = spend(ws.ledger, cfg)
    assert rows[0]["judge_calls"] == {STRONG: 2 * budget} and rows[0]["judge_cost"] == pytest.approx(0.2)
    assert rows[0]["human_cost"] == 2.0 * rows[0]["human_labels"] > 0
    assert rows[0]["errors_per_cost"] == pytest.approx(rows[0]["errors_found"] / rows[0]["cost"])
    # ... shown by status, the report and /metrics.
    cfg_text = (f'[selection]\nprimary_judge = "weak"\n[escalation]\njudges = "recorded:{verdicts}"\n'
                f'budgets = [0.2]\n[cost]\nhuman_label = 2.0\njudge_call = [0.01]\n')
    (ws.root / "rlthf.toml").write_text(cfg_text, encoding="utf-8")
    res = CliRunner().invoke(main, ["--workspace", str(ws.root), "status"])
    assert res.exit_code == 0, res.output
    assert f"spend iteration 0: {rows[0]['human_labels']} human label(s)" in res.output and STRONG in res.output
    page = write_report(ws.ledger, cfg, ws.root / "report").read_text(encoding="utf-8")
    assert "<h2>Spend</h2>" in page and "errors per unit cost" in page
    worker = Worker(ws, ["local"], adapters={"local": LocalBackend()})
    worker._spend_gauges()
    assert worker.metrics.value("rlthf_escalation_calls_total", judge=STRONG) == 4 * budget
    assert worker.metrics.value("rlthf_spend", kind="human") == pytest.approx(sum(r["human_cost"] for r in rows))
    assert "rlthf_errors_per_cost" in worker.metrics.render()


def rep_params(ledger, iteration: int) -> dict:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(L.iterations.c.params).where(L.iterations.c.id == iteration)).scalar()


class Killed(RecordedJudge):
    """A recorded judge whose process dies after ``after`` answers."""

    def __init__(self, path, after: int):
        super().__init__(path)
        self.after = after

    def run(self, calls, on_reply):
        def dying(call, reply):
            if self.calls > self.after:
                raise JudgeError("killed")
            on_reply(call, reply)
        super().run(calls, dying)


def test_resume_after_a_kill_mid_escalation_judges_no_pair_twice(cascade_ws):
    ws, verdicts = cascade_ws
    first = Killed(verdicts, after=7)  # dies inside a pair: one order of it is stored
    with pytest.raises(JudgeError):
        escalate(ws.ledger, ws.config, judges=[first])
    half = _strong_answers(ws.ledger)
    assert len(half) == 7
    second = RecordedJudge(verdicts)
    report = escalate(ws.ledger, ws.config, judges=[second])
    answers = _strong_answers(ws.ledger)
    assert len(answers) == len(set(answers)) == 2 * round(0.2 * N)  # the budget, not more
    assert second.calls == len(answers) - len(half) and not set(half) & set(answers[len(half):])
    assert report.steps[0]["cached"] == 1  # the half-judged pair was finished, not asked again
    assert escalate(ws.ledger, ws.config, judges=[RecordedJudge(verdicts)]).calls == 0  # budget spent this round


def test_run_cli_with_a_recorded_escalation_judge(cascade_ws, runner):
    ws, verdicts = cascade_ws
    (ws.root / "rlthf.toml").write_text('[selection]\nprimary_judge = "weak"\nfolds = 3\n', encoding="utf-8")
    res = runner.invoke(main, ["--workspace", str(ws.root), "run", "--annotator", "oracle:human", "--budget", "0.1",
                               "--escalate-judge", f"recorded:{verdicts}", "--escalate-budget", "0.1"])
    assert res.exit_code == 0, res.output
    assert len(_strong_answers(ws.ledger)) == 2 * round(0.1 * N)
    assert "escalation" in (ws.root / "rlthf.toml").read_text()
    res = runner.invoke(main, ["--workspace", str(ws.root), "run", "--annotator", "oracle:human",
                               "--escalate-judge", str(verdicts)])
    assert res.exit_code == 1 and "recorded:FILE" in res.output


def test_a_kill_inside_an_iteration_redoes_it_and_finishes_the_escalation(cascade_ws):
    ws, verdicts = cascade_ws
    factory = EmbeddingRewardModel(SentenceEmbedder(max_length=32), ledger=ws.ledger, epochs=20).spawn
    with pytest.raises(JudgeError):
        select_iteration(ws.ledger, ws.config, factory=factory, judges=[Killed(verdicts, after=5)])
    half = _strong_answers(ws.ledger)
    second = RecordedJudge(verdicts)
    rep = select_iteration(ws.ledger, ws.config, factory=factory, judges=[second])
    answers = _strong_answers(ws.ledger)
    assert rep.iteration == 0  # the crashed iteration was redone, not skipped
    assert len(answers) == len(set(answers)) == 2 * round(0.2 * N) == len(half) + second.calls


def test_margin_curve_strategy_escalates_before_reading_the_pool(cascade_ws):
    ws, verdicts = cascade_ws
    ws.config.selection.strategy = "margin-curve"
    judge = RecordedJudge(verdicts)
    factory = EmbeddingRewardModel(SentenceEmbedder(max_length=32), ledger=ws.ledger, epochs=20).spawn
    rep = select_iteration(ws.ledger, ws.config, factory=factory, judges=[judge])
    assert judge.calls == 2 * round(0.2 * N) == len(set(_strong_answers(ws.ledger)))
    assert rep_params(ws.ledger, rep.iteration)["escalation"]["calls"] == judge.calls

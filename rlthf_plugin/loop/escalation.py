"""Escalate before asking humans: the judge cascade of each iteration, and what it costs.

Before the human batch of an iteration is drawn (``rlthf select`` / ``run`` / ``serve``
with ``[escalation] judges``), :func:`escalate` asks each escalation judge, cheap to
strong (:mod:`.cascade`), in both orders, on the pairs whose answer is worth the most
(:func:`rlthf_plugin.selection.escalation.choose_escalations`):

1. the pairs this judge answered in one order only (a killed run);
2. the pairs in doubt: no winner to audit (``tie_inconsistent``, or a judge's ``tie``),
   and for every judge after the first, the pairs an earlier judge of the chain
   contradicted or could not decide;
3. the other untrusted pairs without a human answer, by ``[escalation] rule`` over
   P(wrong): in the signals strategy, the iteration's own (RM margin, signals, error
   model), after which the evidence is refit on the new votes; in the margin-curve
   strategy, the latest iteration's (before the first: the votes-only prior).

Each judge asks at most its budget (``[escalation] budgets``, a share of the pool) per
iteration; the answers are cached in the ledger as ``label-ai`` caches them
(:func:`~rlthf_plugin.loop.judging.label_pairs`), so a killed escalation resumes where it
stopped, its budget counted from the verdicts already stored since the latest iteration
began, and no pair is judged twice. The iteration that follows reads the new votes: the
strongest escalation judge with a winner settles a pair's label (:mod:`.pool`), every
verdict is a signal, the error model is refit, and only then is the human batch drawn.

:func:`spend` is the cost side: per iteration, the human labels asked and the escalation
calls made, priced by ``[cost]``, and the errors the human labels found per unit of cost.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..config import Config
from ..models.judge import Judge, open_judge
from ..models.judge.prompt import ORDERS
from ..pairs import A, B, TIE, TIE_INCONSISTENT
from ..selection.escalation import choose_escalations
from ..selection.prior import prior_wrong
from ..selection.rlthf import Action
from ..selection.signals import primary_labels, signal_table
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..store.pair_ids import positions_of
from ..store.votes import answer_times, coverage, read_votes
from ..vocab import SELECTING_STATES
from .cascade import Step, cascade
from .judging import label_pairs
from .pool import Pool, read_pool


@dataclass
class EscalationReport:
    """What one :func:`escalate` did, per judge of the chain."""

    steps: list[dict] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(s["asked"] for s in self.steps)

    def summary(self) -> dict[str, Any]:
        return {"judges": self.steps, "calls": self.calls}


def _scores(ledger: Ledger, config: Config, pool: Pool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(wrong), trusted, asked) per pool pair from the latest finished selection; P(wrong)
    from the votes alone (the unsupervised prior) where it has none."""
    n = len(pool.pairs)
    votes = pool.votes
    p = np.full(n, np.nan)
    if votes is not None and votes.judges and pool.primary_judge in votes.judges:
        j = votes.judges.index(pool.primary_judge)
        table = signal_table(votes.votes, j, judge_names=votes.judges, coverage=coverage(votes))
        p = prior_wrong(table, votes.votes, j, method=config.selection.prior)
    trusted, asked = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    rows = [r for r in iterations_db.iteration_rows(ledger) if r["state"] not in SELECTING_STATES]
    if rows:
        ds = iterations_db.decisions(ledger, rows[-1]["id"])
        for d, i in zip(ds, positions_of(pool.index, [d["pair_id"] for d in ds]).tolist()):
            if i < 0:
                continue
            pw = (d["reason"] or {}).get("p_wrong")
            if pw is not None:
                p[i] = float(pw)
            trusted[i] = d["action"] == Action.KEEP.value
            asked[i] = d["action"] == Action.ASK.value
    return p, trusted, asked


def selection_times(rows: list[dict]) -> list[tuple[int, dt.datetime]]:
    """(iteration, when its selection was recorded) of the iterations past selecting, by id
    (``started_at`` for rows recorded before ``selected_at`` existed)."""
    out = []
    for r in rows:
        if r["state"] in SELECTING_STATES:
            continue
        at = (r.get("stats") or {}).get("selected_at")
        out.append((r["id"], dt.datetime.fromisoformat(at) if at else r["started_at"]))
    return out


def _round_start(ledger: Ledger) -> dt.datetime | None:
    """When the current escalation round began: the latest recorded selection (None before
    the first). A retried or resumed round counts what it already asked."""
    times = selection_times(iterations_db.iteration_rows(ledger))
    return times[-1][1] if times else None


def escalate(ledger: Ledger, config: Config, *, judges: Sequence[Judge] | None = None, progress: bool = False,
             pool: Pool | None = None, scores: tuple[np.ndarray, np.ndarray] | None = None) -> EscalationReport:
    """Ask the escalation judges of ``config`` before the next human batch (module docstring).

    ``judges``: the opened judges, one per step (default: opened from their specs).
    ``pool`` and ``scores``: the pool as read, and its (P(wrong) (N,), trusted (N,) bool)
    from the current iteration's evidence (the signals strategy); default: read here, the
    scores from the latest finished iteration (before the first: the votes-only prior).
    """
    steps = cascade(config)
    report = EscalationReport()
    if not steps:
        return report
    judges = list(judges) if judges is not None else [open_judge(s.spec, config.judge, template=s.template)
                                                      for s in steps]
    pool = pool if pool is not None else read_pool(ledger, config)
    ids = [p.id for p in pool.pairs]
    if scores is not None:  # this iteration's own evidence; it has not asked yet
        p_wrong, trusted = np.asarray(scores[0], dtype=np.float64), np.asarray(scores[1], dtype=bool)
        asked = np.zeros(len(ids), dtype=bool)
    else:
        p_wrong, trusted, asked = _scores(ledger, config, pool)
    labeled = np.isin(pool.ai, [A, B, TIE, TIE_INCONSISTENT])
    base = labeled & ~pool.human_any & ~trusted & ~asked
    doubt = np.isin(pool.ai, [TIE, TIE_INCONSISTENT])  # no winner to audit: the next judge may settle it
    since = _round_start(ledger)
    skip = int(round(config.selection.budget * int(np.isin(pool.ai, [A, B]).sum())))
    for step, judge in zip(steps, judges):
        answers = _answers(ledger, step, ids, pool)
        done = answers["both"]
        in_flight = (answers["ab"] | answers["ba"]) & ~done
        spent = sum(1 for pid, t in answers["both_at"] if since is None or t > since)
        budget = max(int(round(step.budget * int(labeled.sum()))) - spent, 0)
        rows = choose_escalations(p_wrong, budget=budget, eligible=base & ~done, inconsistent=doubt,
                                  in_flight=in_flight, rule=config.escalation.rule, skip=skip)
        rep = label_pairs(ledger, judge, step.template, task=config.judge.task, pair_ids=[ids[i] for i in rows],
                          max_chars=config.judge.max_chars or None, progress=progress)
        report.steps.append({"judge": rep.judge, "budget": budget + spent, "pairs": int(rows.size),
                             "asked": rep.asked, "cached": rep.cached, "verdicts": rep.verdicts,
                             "cost": rep.asked * step.call_price})
        # Doubt for the next judge: pairs this one contradicted or could not decide.
        verdict = _verdicts(ledger, step, ids, pool)
        undecided = np.isin(verdict, [TIE, TIE_INCONSISTENT])
        against = np.isin(verdict, [A, B]) & np.isin(pool.ai, [A, B]) & (verdict != pool.ai)
        doubt = doubt | undecided | against
        doubt &= ~(np.isin(verdict, [A, B]) & np.isin(pool.ai, [TIE, TIE_INCONSISTENT]))  # settled by this judge
    return report


def _answers(ledger: Ledger, step: Step, ids: list[str], pool: Pool) -> dict[str, Any]:
    n = len(ids)
    out: dict[str, Any] = {o: np.zeros(n, dtype=bool) for o in (*ORDERS, "both")}
    out["both_at"] = []
    answers = answer_times(ledger, [step.name])
    for (pid, _, version, order, at), i in zip(answers, positions_of(pool.index, [a[0] for a in answers]).tolist()):
        if i < 0 or version != step.template.version or order not in out:
            continue
        out[order][i] = True
        if order == "both":
            out["both_at"].append((pid, at))
    return out


def _verdicts(ledger: Ledger, step: Step, ids: list[str], pool: Pool) -> np.ndarray:
    """(N,) this judge's verdict per pool pair ("" where none), from the votes as re-read."""
    table = read_votes(ledger, ids)
    if step.name not in table.judges:
        return np.full(len(ids), "", dtype=str)
    return primary_labels(table.votes, table.judges.index(step.name))


def spend(ledger: Ledger, config: Config) -> list[dict[str, Any]]:
    """Per iteration: human labels asked, escalation calls per judge, their cost by ``[cost]``,
    the AI-label errors its human labels found and those errors per unit of cost.

    An escalation call belongs to the iteration whose batch it preceded: calls after the
    selection of iteration i-1 was recorded and before that of iteration i count for
    iteration i (a last row ``next`` holds calls for an iteration not yet selected).
    """
    steps = cascade(config)
    price = {s.name: s.call_price for s in steps}
    rows = [r for r in iterations_db.iteration_rows(ledger) if r["state"] not in SELECTING_STATES]
    ends = [at for _, at in selection_times(rows)]
    calls: dict[int, dict[str, int]] = {}
    for _, judge, _, order, at in answer_times(ledger, list(price)):
        if order in ORDERS:
            k = bisect.bisect_left(ends, at)  # the first selection recorded after the call
            calls.setdefault(k, {}).setdefault(judge, 0)
            calls[k][judge] += 1
    found = _errors_found(ledger, config)
    out = []
    for k, r in enumerate(rows + [None]):
        if r is None and k not in calls:
            break
        it = r["id"] if r is not None else "next"
        asked = int(((r or {}).get("stats") or {}).get("counts", {}).get(Action.ASK.value, 0))
        judge_calls = calls.get(k, {})
        human_cost = asked * config.cost.human_label
        judge_cost = sum(n * price.get(j, 0.0) for j, n in judge_calls.items())
        total = human_cost + judge_cost
        errors = found.get(it, 0)
        out.append({"iteration": it, "human_labels": asked, "judge_calls": judge_calls,
                    "human_cost": human_cost, "judge_cost": judge_cost, "cost": total,
                    "errors_found": errors, "errors_per_cost": errors / total if total > 0 else None})
    return out


def _errors_found(ledger: Ledger, config: Config) -> dict[Any, int]:
    """iteration -> human labels (of that iteration's batch) against the audited AI label."""
    pool = read_pool(ledger, config)
    out: dict[Any, int] = {}
    wrong = np.isin(pool.human, [A, B]) & np.isin(pool.ai, [A, B, TIE_INCONSISTENT]) & (pool.human != pool.ai)
    for i in np.flatnonzero(wrong & (pool.human_iteration >= 0)):
        it = int(pool.human_iteration[i])
        out[it] = out.get(it, 0) + 1
    return out


__all__ = ["EscalationReport", "escalate", "spend"]

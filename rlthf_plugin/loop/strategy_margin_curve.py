"""One iteration of the ``margin-curve`` strategy: the RLTHF paper's rules on the reward
model's margin curve.

1. the training set (:func:`rlthf_plugin.loop.pool.training_set`): human labels (weighted
   by the amplification alpha of the iteration that asked them) plus, from the previous
   iteration's decisions, the kept AI labels and the flipped ones; the first iteration
   trains on every AI label;
2. a reward model trains and gives the margin of every AI label, cross-fitted so no pair
   is scored by a model that trained on it (:mod:`rlthf_plugin.loop.cross_fit`);
3. flip / ask / keep / drop for the pairs without a human label
   (:func:`rlthf_plugin.selection.rlthf.select_actions`), the flip gate fed by the AI-error
   rate measured on human-labeled pairs that lay in the flip region when they were asked;
4. the ``decisions`` rows, in one transaction fenced by the owner's lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..config import Config
from ..models.reward import RewardModel
from ..pairs import A, B
from ..selection.rlthf import Action, Region, Selection, ai_margins, flip_gate, schedule, select_actions
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..vocab import Strategy
from .cross_fit import cross_fit_margins
from .owner import IterationOwner
from .pool import Pool, human_weights, in_shard, label_judge_counts, make_factory, previous_actions, training_set
from .strategy import IterationReport, SelectionStrategy, rm_check
from .batch import batch_priority


# -- the pure core of one iteration -------------------------------------------------------------
@dataclass
class Plan:
    """The result of :func:`plan_iteration`: margins of every pair, actions of the candidates."""

    margins: np.ndarray        # (N,) margin of the AI label, NaN where the AI label has no winner
    train: np.ndarray          # (N,) bool, in this iteration's training set
    candidates: np.ndarray     # (M,) int, indices of the pairs the selection covers
    selection: Selection       # over the candidates, in that order


def plan_iteration(prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str],
                   ai: np.ndarray, human: np.ndarray, human_weight: np.ndarray, prev_action: np.ndarray | None,
                   *, factory: Callable[[], RewardModel], budget: int, back_off: float,
                   candidates: np.ndarray, gate, folds: int = 5, probe: float = 0.1, audit: float = 0.0,
                   seed: int = 0, progress: bool = False) -> Plan:
    """Train, score and decide for one iteration; no I/O (the benchmark and the loop share it).

    ``candidates`` (bool (N,)) marks the pairs that may get an action: AI label A/B, no
    human label, inside the shard. ``human_weight`` is the amplification of each human
    pair (ignored elsewhere).
    """
    labels, weights = training_set(ai, human, human_weight, prev_action)
    train = labels != ""
    raw = cross_fit_margins(factory, prompts, response_a, response_b, labels, train=train, weights=weights,
                            folds=folds, seed=seed, progress=progress)
    winner = np.isin(ai, [A, B])
    margins = np.full(len(ai), np.nan)
    margins[winner] = ai_margins(raw[winner], np.zeros(int(winner.sum())), np.where(ai[winner] == A, "A", "B"))
    cand = np.flatnonzero(candidates & winner)
    selection = select_actions(margins[cand], budget=budget, back_off=back_off, gate=gate, probe=probe,
                               audit=audit, seed=seed)
    return Plan(margins, train, cand, selection)


# -- the imperative shell -----------------------------------------------------------------------
def gate_evidence(ledger: Ledger, pool: Pool) -> tuple[int, int]:
    """(AI errors, labeled pairs) among pairs asked while they lay in the flip region."""
    asked = iterations_db.asked_from_region(ledger, Region.FLIP)
    errors = n = 0
    for pid in asked:
        i = pool.index.get(pid)
        if i is None or pool.human[i] not in (A, B) or pool.ai[i] not in (A, B):
            continue
        n += 1
        errors += pool.human[i] != pool.ai[i]
    return errors, n


def select_margin_curve(ledger: Ledger, config: Config, *, it: int, rows: list[dict], pool: Pool,
                        factory: Callable[[], RewardModel] | None, progress: bool = False,
                        owner: IterationOwner | None = None) -> IterationReport:
    """Decide one iteration with the margin curve and record it (see the module docstring)."""
    sel = config.selection
    alpha, beta = schedule(it, amplification=sel.amplification, back_off=sel.back_off)
    winner = np.isin(pool.ai, [A, B])
    pool_size = int(winner.sum())
    prev_action = previous_actions(ledger, pool, rows[-1]["id"] if rows else None)
    human_weight = human_weights(pool, rows, config, alpha)
    candidates = winner & ~pool.human_any & in_shard(pool.ids, sel.shard, sel.seed)
    errors, n_evidence = gate_evidence(ledger, pool)
    gate = flip_gate(errors, n_evidence, mode=sel.flip, min_precision=sel.flip_min_precision,
                     min_evidence=sel.min_evidence)
    budget = int(round(sel.budget * pool_size))
    factory = factory or make_factory(ledger, config, progress=progress)
    plan = plan_iteration(*pool.texts(), pool.ai, pool.human, human_weight, prev_action,
                          factory=factory, budget=budget, back_off=beta, candidates=candidates, gate=gate,
                          folds=sel.folds, probe=sel.probe, audit=sel.audit, seed=sel.seed + it, progress=progress)
    s = plan.selection
    cand_pairs = pool.pairs_at(plan.candidates)
    ids = pool.ids
    decision_rows = [
        {"iteration": it, "pair_id": ids[i], "action": str(s.action[k]), "region": str(s.region[k]),
         "margin": float(s.margins[k]), "rank": int(s.rank[k]), "priority": batch_priority(it, s.priority[k]),
         "reason": {} if s.action[k] == Action.DROP else s.reason(k)}  # a drop's code is its reason
        for k, i in enumerate(plan.candidates)
    ]
    stats = {
        "pool": pool_size, "candidates": int(plan.candidates.size), "train": int(plan.train.sum()),
        "human_labeled": int(np.isin(pool.human, [A, B]).sum()), "budget": budget,
        "label_judges": label_judge_counts(pool), "counts": s.counts(), "curve": s.curve.summary(), "rm_check": rm_check(pool, plan.margins, ledger),
        "gate": {"open": s.gate.open, "errors": s.gate.errors, "n": s.gate.n,
                 "lower_bound": s.gate.lower_bound, "reason": s.gate.reason},
    }
    iterations_db.record_selection(ledger, it, decision_rows, stats, fence=owner.fence if owner else None)
    return IterationReport(it, s.counts(), stats, s, cand_pairs)


STRATEGY = SelectionStrategy(Strategy.MARGIN_CURVE.value, select_margin_curve)

__all__ = ["Plan", "STRATEGY", "gate_evidence", "plan_iteration", "select_margin_curve"]

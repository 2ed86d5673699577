"""The RLTHF loop on a workspace: select -> label -> retrain, one resumable iteration at a time.

An iteration (:func:`select_iteration`):

1. builds the training set: every pair with a human label (weighted by the amplification
   alpha of the iteration that asked it) plus, from the previous iteration's decisions,
   the kept AI labels and the flipped ones; the first iteration trains on every AI label;
2. trains a reward model and computes the margin of every AI label, cross-fitted so no
   pair is scored by a model that trained on it (``selection.folds``);
3. decides flip / ask / keep / drop for the pairs without a human label
   (:func:`rlthf_plugin.selection.rlthf.select_actions`), the flip gate fed by the AI-error
   rate measured on human-labeled pairs that lay in the flip region when they were asked;
4. records the ``iterations`` row and one ``decisions`` row per pair in one transaction.

A crash before step 4 leaves the iteration ``selecting``; the next call redoes it. After
step 4 it is ``selected``; the service's worker (:mod:`rlthf_plugin.service.worker`) takes it on
through ``pushing``, ``pushed`` and ``labeled``.
:mod:`rlthf_plugin.loop.oracle` answers an iteration's asked pairs from ground truth (the
simulated annotator) and evaluates the curated labels against it.

Human labels from the ``selection.ground_truth`` platforms (by default the imported ones)
are ground truth only: the oracle answers from them and evaluates against them; they are
never training labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config, ground_truth_platforms
from ..errors import ConfigError, RlthfError
from ..models.reward import RewardModel, cross_fit_margins
from ..pairs import A, B, PreferencePair, majority
from ..selection.rlthf import (Action, Region, Selection, ai_margins, flip_gate, mcnemar_exact, schedule,
                              select_actions)
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.votes import VoteTable, audited_of, read_votes
from ..vocab import SELECTING, STRATEGIES, Strategy
from .owner import IterationOwner, owned


ORACLE_PLATFORM = "oracle"


# -- the pure core of one iteration -------------------------------------------------------------
@dataclass
class Plan:
    """The result of :func:`plan_iteration`: margins of every pair, actions of the candidates."""

    margins: np.ndarray        # (N,) margin of the AI label, NaN where the AI label has no winner
    train: np.ndarray          # (N,) bool, in this iteration's training set
    candidates: np.ndarray     # (M,) int, indices of the pairs the selection covers
    selection: Selection       # over the candidates, in that order


def training_labels(ai: np.ndarray, human: np.ndarray, prev_action: np.ndarray | None) -> np.ndarray:
    """The label each pair trains on in this iteration ("" = not in the training set).

    ``ai`` and ``human`` are (N,) arrays of labels ("" where none); ``ai`` is the audited AI
    label (:attr:`Pool.ai`: the primary judge's, or a fallback judge's where the primary did
    not vote). ``prev_action`` is the previous iteration's action per pair ("" where none)
    or None in the first iteration.
    """
    out = np.full(ai.shape, "", dtype=object)
    winner_ai = np.isin(ai, [A, B])
    if prev_action is None:
        out[winner_ai] = ai[winner_ai]
    else:
        keep = winner_ai & (prev_action == Action.KEEP)
        flip = winner_ai & (prev_action == Action.FLIP)
        out[keep] = ai[keep]
        out[flip] = np.where(ai[flip] == A, B, A)
    has_human = np.isin(human, [A, B])
    out[has_human] = human[has_human]
    return out.astype(str)


def training_set(ai: np.ndarray, human: np.ndarray, human_weight: np.ndarray,
                 prev_action: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) str, weights (N,) float) of one iteration's training set.

    ``labels`` as :func:`training_labels` ("" = not trained on); ``weights`` is the
    amplification ``human_weight`` on pairs with a human winner, 1 elsewhere.
    """
    labels = training_labels(ai, human, prev_action)
    return labels, np.where(np.isin(human, [A, B]), human_weight, 1.0)


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


# -- reading the workspace ----------------------------------------------------------------------
@dataclass
class Pool:
    """Everything an iteration reads from the ledger, as aligned arrays."""

    pairs: list[PreferencePair]
    ai: np.ndarray             # (N,) the audited AI label ("" when none; may be tie_inconsistent)
    human: np.ndarray          # (N,) counted human majority label ("" when none)
    human_any: np.ndarray      # (N,) bool: any counted human answer (also tie / skip)
    human_iteration: np.ndarray  # (N,) iteration that asked it (-1 when none)
    truth: np.ndarray          # (N,) ground-truth majority label ("" when none)
    index: dict[str, int] = field(default_factory=dict)
    primary_judge: str = ""    # whose label ``ai`` is where it voted
    label_judge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))  # (N,) whose ``ai`` it is
    votes: VoteTable | None = None  # every AI vote of ``pairs``, in their order


def read_pool(ledger: Ledger, config: Config) -> Pool:
    pairs = ledger.get_pairs()
    index = {p.id: i for i, p in enumerate(pairs)}
    n = len(pairs)
    ai = np.full(n, "", dtype=object)
    judge = np.full(n, "", dtype=object)
    # The audited AI label is the primary judge's, or a fallback judge's where the primary did
    # not vote (the other judges are signals, never the label).
    ai_votes = read_votes(ledger, [p.id for p in pairs])  # read once: select_signals takes them from the pool
    audited = audited_of(ledger, ai_votes, config.selection.primary_judge)
    for pid, label in audited.labels.items():
        if pid in index:
            ai[index[pid]] = label
            judge[index[pid]] = audited.judges[pid]
    truth_platforms = ground_truth_platforms(config)
    counted: dict[str, list[str]] = defaultdict(list)
    truth_votes: dict[str, list[str]] = defaultdict(list)
    asked_in: dict[str, int] = {}
    for r in label_rows(ledger):
        if r.platform in truth_platforms:
            truth_votes[r.pair_id].append(r.label)
        else:
            counted[r.pair_id].append(r.label)
            if r.iteration is not None:
                asked_in[r.pair_id] = r.iteration
    human = np.full(n, "", dtype=object)
    human_any = np.zeros(n, dtype=bool)
    human_iteration = np.full(n, -1, dtype=np.int64)
    truth = np.full(n, "", dtype=object)
    for pid, votes in counted.items():
        i = index.get(pid)
        if i is None:
            continue
        human_any[i] = True
        human[i] = majority(votes).label or ""
        human_iteration[i] = asked_in.get(pid, -1)
    for pid, votes in truth_votes.items():
        if pid in index:
            truth[index[pid]] = majority(votes).label or ""
    return Pool(pairs, ai.astype(str), human.astype(str), human_any, human_iteration, truth.astype(str), index,
                audited.primary, judge.astype(str), ai_votes)


def label_judge_counts(pool: Pool) -> dict[str, int]:
    """judge -> pool pairs (AI winner A or B) audited under its label, most first."""
    judges, counts = np.unique(pool.label_judge[np.isin(pool.ai, [A, B])], return_counts=True)
    return {str(judges[k]): int(counts[k]) for k in np.lexsort((judges, -counts))}


def in_shard(pair_ids: Sequence[str], shard: float, seed: int) -> np.ndarray:
    """(N,) bool: a stable random ``shard`` fraction of the pairs (by hashing their ids)."""
    if not 0 < shard <= 1:
        raise ConfigError(f"selection.shard must be in (0, 1], got {shard}")
    if shard == 1:
        return np.ones(len(pair_ids), dtype=bool)
    import hashlib

    def u(pid: str) -> float:
        return int(hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()[:12], 16) / 16 ** 12

    return np.array([u(p) < shard for p in pair_ids], dtype=bool)


def make_factory(ledger: Ledger, config: Config, *, progress: bool = False) -> Callable[[], RewardModel]:
    """A callable returning untrained reward models of the configured kind."""
    sel = config.selection
    if sel.reward_model == "embedding":
        from ..models.embeddings import SentenceEmbedder
        from ..models.reward import EmbeddingRewardModel

        emb = config.embedding
        base = EmbeddingRewardModel(SentenceEmbedder(emb.model, batch_size=emb.batch_size, max_length=emb.max_length,
                                                        backend=emb.backend),
                                    ledger=ledger, head=sel.head, seed=sel.seed, progress=progress)
        return base.spawn
    if sel.reward_model == "transformer":
        from ..errors import require

        module = require("rlthf_plugin.models.reward_trl", "train")
        return lambda: module.TransformerRewardModel()
    raise ConfigError(f"unknown selection.reward_model '{sel.reward_model}'; known: embedding, transformer")


# -- the imperative shell -----------------------------------------------------------------------
def previous_actions(ledger: Ledger, pool: Pool, iteration: int | None) -> np.ndarray | None:
    """(N,) str: each pair's action in ``iteration`` ("" where none); None when ``iteration`` is None."""
    if iteration is None:
        return None
    out = np.full(len(pool.pairs), "", dtype=object)
    for d in iterations_db.decisions(ledger, iteration):
        if d["pair_id"] in pool.index:
            out[pool.index[d["pair_id"]]] = d["action"]
    return out.astype(str)


def human_weights(pool: Pool, rows: list[dict], config: Config, alpha: float) -> np.ndarray:
    """(N,) amplification of each pair's human label: that of the iteration that asked it
    (``rows``: the iterations so far), ``alpha`` for labels no iteration asked."""
    alphas = amplification_of(rows, config)
    return np.array([alphas.get(int(h), alpha) for h in pool.human_iteration], dtype=np.float64)


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


def amplification_of(rows: list[dict], config: Config) -> dict[int, float]:
    """iteration id -> the amplification alpha it ran with (the schedule's for older rows)."""
    sel = config.selection
    out = {}
    for r in rows:
        params = r["params"] or {}
        out[r["id"]] = float(params.get("amplification", schedule(r["id"], amplification=sel.amplification,
                                                                     back_off=sel.back_off)[0]))
    return out


@dataclass
class IterationReport:
    iteration: int
    counts: dict[str, int]
    stats: dict[str, Any]
    selection: Selection
    pairs: list[PreferencePair]    # the candidates, aligned with the selection


def select_iteration(ledger: Ledger, config: Config, *, factory: Callable[[], RewardModel] | None = None,
                     progress: bool = False, owner: IterationOwner | None = None) -> IterationReport:
    """Run one iteration (train, curve, decide) and record it; see the module docstring.

    Runs as the iteration's owner (``owner``, or a fresh one for the call): raises
    :class:`~rlthf_plugin.errors.LeaseHeldError` when another process moves the iteration,
    and its writes are fenced by the lease.
    """
    with owned(ledger, owner) as o:
        return _select_iteration(ledger, config, factory, progress, o)


def _select_iteration(ledger: Ledger, config: Config, factory: Callable[[], RewardModel] | None, progress: bool,
                      owner: IterationOwner) -> IterationReport:
    sel = config.selection
    rows = iterations_db.iteration_rows(ledger)
    if rows and rows[-1]["state"] in SELECTING:  # a crashed iteration: redo it
        it = rows[-1]["id"]
        rows = rows[:-1]
    else:
        it = rows[-1]["id"] + 1 if rows else 0
    if sel.flip not in ("gated", "always", "never"):
        raise ConfigError(f"selection.flip must be gated, always or never, not '{sel.flip}'")
    if not 0 <= sel.budget <= 1:
        raise ConfigError(f"selection.budget must be a fraction in [0, 1], got {sel.budget}")
    if sel.strategy not in STRATEGIES:
        raise ConfigError(f"unknown selection.strategy '{sel.strategy}'; known: {', '.join(STRATEGIES)}")
    alpha, beta = schedule(it, amplification=sel.amplification, back_off=sel.back_off)
    pool = read_pool(ledger, config)
    if not pool.pairs:
        raise RlthfError("the workspace has no pairs: run 'rlthf import' first")
    params = {"budget": sel.budget, "shard": sel.shard, "amplification": alpha, "back_off": beta,
              "reward_model": sel.reward_model, "head": sel.head, "folds": sel.folds, "flip": sel.flip,
              "flip_min_precision": sel.flip_min_precision, "probe": sel.probe, "audit": sel.audit,
              "seed": sel.seed, "ground_truth": sel.ground_truth, "strategy": sel.strategy,
              "primary_judge": pool.primary_judge}
    if sel.strategy == Strategy.SIGNALS:
        params.update(prior=sel.prior, prior_strength=sel.prior_strength, explore=sel.explore,
                      real_share=sel.real_share, trust_max_error=sel.trust_max_error)
    iterations_db.begin_iteration(ledger, it, params, fence=owner.fence)
    winner = np.isin(pool.ai, [A, B])
    pool_size = int(winner.sum())
    if pool_size == 0:
        raise RlthfError("no pair has an AI label with a winner (A or B): import or judge AI labels first")
    if sel.strategy == Strategy.SIGNALS:
        from .signals import select_signals

        return select_signals(ledger, config, it=it, rows=rows, pool=pool, factory=factory, progress=progress,
                              owner=owner)
    prev_action = previous_actions(ledger, pool, rows[-1]["id"] if rows else None)
    human_weight = human_weights(pool, rows, config, alpha)
    candidates = winner & ~pool.human_any & in_shard([p.id for p in pool.pairs], sel.shard, sel.seed)
    errors, n_evidence = gate_evidence(ledger, pool)
    gate = flip_gate(errors, n_evidence, mode=sel.flip, min_precision=sel.flip_min_precision,
                     min_evidence=sel.min_evidence)
    budget = int(round(sel.budget * pool_size))
    factory = factory or make_factory(ledger, config, progress=progress)
    plan = plan_iteration([p.prompt for p in pool.pairs], [p.response_a for p in pool.pairs],
                          [p.response_b for p in pool.pairs], pool.ai, pool.human, human_weight, prev_action,
                          factory=factory, budget=budget, back_off=beta, candidates=candidates, gate=gate,
                          folds=sel.folds, probe=sel.probe, audit=sel.audit, seed=sel.seed + it, progress=progress)
    s = plan.selection
    cand_pairs = [pool.pairs[i] for i in plan.candidates]
    decision_rows = [
        {"iteration": it, "pair_id": p.id, "action": str(s.action[k]), "region": str(s.region[k]),
         "margin": float(s.margins[k]), "rank": int(s.rank[k]), "priority": float(s.priority[k]),
         "reason": s.reason(k)}
        for k, p in enumerate(cand_pairs)
    ]
    stats = {
        "pool": pool_size, "candidates": int(plan.candidates.size), "train": int(plan.train.sum()),
        "human_labeled": int(np.isin(pool.human, [A, B]).sum()), "budget": budget,
        "label_judges": label_judge_counts(pool), "counts": s.counts(), "curve": s.curve.summary(), "rm_check": rm_check(pool, plan.margins, ledger),
        "gate": {"open": s.gate.open, "errors": s.gate.errors, "n": s.gate.n,
                 "lower_bound": s.gate.lower_bound, "reason": s.gate.reason},
    }
    iterations_db.record_selection(ledger, it, decision_rows, stats, fence=owner.fence)
    return IterationReport(it, s.counts(), stats, s, cand_pairs)


def rm_check(pool: Pool, margins: np.ndarray, ledger: Ledger) -> dict[str, Any]:
    """The held-out check: is the RM better than the AI labels on the audit sample?

    Compares the cross-fitted RM with the AI label on human-labeled pairs that were asked
    as uniform audit samples (McNemar's exact one-sided test on the pairs where they
    disagree). ``better`` is true only when the RM wins with p < 0.05.
    """
    audited = {pool.index[p] for p in iterations_db.asked_from_region(ledger, Region.AUDIT) if p in pool.index}
    rm_only = ai_only = n = 0
    for i in audited:
        if pool.human[i] not in (A, B) or pool.ai[i] not in (A, B) or not np.isfinite(margins[i]):
            continue
        n += 1
        ai_right = pool.ai[i] == pool.human[i]
        rm_right = ai_right == (margins[i] > 0)
        rm_only += rm_right and not ai_right
        ai_only += ai_right and not rm_right
    p = mcnemar_exact(rm_only, ai_only)
    return {"n": n, "rm_only_right": rm_only, "ai_only_right": ai_only, "p_value": p, "better": bool(p < 0.05)}

"""One iteration of the ``signals`` strategy: every signal against the AI label.

Dispatched by :func:`rlthf_plugin.loop.iteration.select_iteration` when
``selection.strategy = "signals"`` (the interface: :mod:`rlthf_plugin.loop.strategy`). On the pairs of the workspace:

1. the reward model trains on the current labels (human winners, weighted by the alpha of
   the iteration that asked them; elsewhere the audited AI label, swapped where the
   previous iteration flipped it) and gives cross-fitted margins;
2. the signal table (:mod:`rlthf_plugin.selection.signals`): the RM margin of the audited
   label (the primary judge's, or a fallback judge's where the primary did not vote),
   the sibling margin (the order the other labels of the same prompt imply,
   :mod:`rlthf_plugin.selection.siblings`), every other judge per order, the label
   judge's consistency and confidence, length;
3. the prior (``selection.prior``) and the error model fit on the human labels so far,
   cross-fitted (:mod:`rlthf_plugin.selection.error_model`);
4. trust certified as a set (:mod:`rlthf_plugin.selection.guarantee`): the trusted region
   (disagreement <= ``selection.trust_alpha`` w.p. >= 1 - ``selection.trust_delta``); flips
   on calibrated per-pair evidence (``selection.flip_min_precision``,
   :mod:`rlthf_plugin.selection.trust`) and flips certified by an audit
   (``selection.flip_audit``, :mod:`rlthf_plugin.loop.flip_audit`): the suspects are a
   uniform sample of the region of highest P(wrong), whose rest is flipped at the next
   iteration if the sample shows a precision above 1/2;
5. the human batch (:mod:`rlthf_plugin.selection.allocation`): suspects by P(wrong), REAL
   candidates by dissimilarity (``selection.real_share``) and a uniform exploration share
   (``selection.explore``). A pair whose label judge contradicted itself across orders
   (``tie_inconsistent``) has no label to audit: an escalation judge (``[escalation]``,
   :mod:`rlthf_plugin.loop.escalation`) may settle it (its verdict becomes the audited
   label); the unsettled ones never compete with the suspects but get their own share,
   ``selection.tie_share``, reported apart as ``tie``.

Decisions (one row per pair without a human label): ``ask`` (region = the task's kind:
``suspect``, ``real``, ``explore``, ``tie``), ``flip``, ``keep`` (trusted), ``drop`` (neither
proven: the AI label stays, as ``ai``, in the export).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..config import Config
from ..errors import ConfigError, require
from ..models.judge import Judge
from ..models.reward import RewardModel
from ..pairs import A, B, TIE_INCONSISTENT
from ..selection.allocation import Kind, allocate
from ..selection.trust import decide
from ..selection.error_model import fit_error_model
from ..selection.flip_audit import audit_region
from ..selection.guarantee import trusted_region
from ..selection.prior import PRIOR_METHODS, prior_wrong
from ..selection.rlthf import Action, Region, analyze_curve, schedule
from ..selection.siblings import sibling_margins
from ..selection.signals import SignalTable, audited_labels, signal_table
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..store.votes import coverage, read_votes
from ..vocab import Strategy
from .cascade import cascade, settler_names
from .cross_fit import cross_fit_margins
from .owner import IterationOwner
from .escalation import escalate
from .flip_audit import AuditFlips, no_audit, previous_audit
from .pool import (Pool, human_weights, in_shard, label_judge_counts, make_factory, previous_actions, read_pool,
                   stored_table)
from .strategy import IterationReport, SelectionStrategy, rm_check
from .batch import batch_priority

#: Values of ``[serve] stop_when``.
STOP_WHEN = ("never", "target")
#: A pair's certificate before the batch (an int8 code a pair) and the action it becomes.
_NONE, _TRUST, _FLIP = 0, 1, 2
_ACTION = {_FLIP: Action.FLIP.value, _TRUST: Action.KEEP.value, _NONE: Action.DROP.value}
#: Regions of the signals strategy besides the curve's (a decision's ``region``).
INCONSISTENT, UNPROVEN = "inconsistent", "none"
_REGION = {Action.FLIP.value: Region.FLIP.value, Action.KEEP.value: Region.TRUSTED.value, Action.DROP.value: UNPROVEN}
#: A decision's action and region as int8 codes (their index; 0: the pair is not a candidate).
_ACTIONS = ("", *(a.value for a in Action))
_REGIONS = ("", Region.FLIP.value, Region.TRUSTED.value, UNPROVEN, INCONSISTENT, *(k.value for k in Kind))
#: Candidate rows found at a time when the decisions are written.
_ROW_PAGE = 50_000


def _check(config: Config) -> None:
    sel = config.selection
    if sel.prior not in PRIOR_METHODS:
        raise ConfigError(f"unknown selection.prior '{sel.prior}'; known: {', '.join(PRIOR_METHODS)}")
    if sel.prior == "crowdlab":  # cleanlab is an optional package (the signals extra)
        require("cleanlab.multiannotator", "signals")
    for name in ("explore", "real_share", "trust_max_error", "tie_share"):
        v = getattr(sel, name)
        if not 0 <= v < 1:
            raise ConfigError(f"selection.{name} must be in [0, 1), got {v}")
    if sel.explore + sel.real_share + sel.tie_share > 1:
        raise ConfigError("selection.explore + selection.real_share + selection.tie_share must be <= 1, got "
                          f"{sel.explore + sel.real_share + sel.tie_share}")
    if not 0 < sel.flip_min_precision <= 1:
        raise ConfigError(f"selection.flip_min_precision must be in (0, 1], got {sel.flip_min_precision}")
    if sel.prior_strength < 0:
        raise ConfigError(f"selection.prior_strength must be >= 0, got {sel.prior_strength}")
    check_quality_settings(config)


def check_quality_settings(config: Config) -> None:
    """One-line refusal of ``trust_alpha`` / ``trust_delta`` outside (0, 1), a ``flip_audit``
    outside [0, 1), a ``target_accuracy`` outside [0, 1], an unknown ``serve.stop_when``."""
    sel = config.selection
    for name in ("trust_alpha", "trust_delta"):
        v = getattr(sel, name)
        if not 0 < v < 1:
            raise ConfigError(f"selection.{name} must be in (0, 1), got {v}")
    if not 0 <= sel.flip_audit < 1:
        raise ConfigError(f"selection.flip_audit must be in [0, 1), got {sel.flip_audit}")
    if sel.target_accuracy is not None and not 0 <= sel.target_accuracy <= 1:
        raise ConfigError(f"selection.target_accuracy must be in [0, 1], got {sel.target_accuracy}")
    if config.serve.stop_when not in STOP_WHEN:
        raise ConfigError(f"serve.stop_when must be one of {', '.join(STOP_WHEN)}, got {config.serve.stop_when!r}")


def _real_candidates(pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows, dissimilarity) of REAL candidate pairs with no AI and no human label."""
    sim = pool.similarity()
    rows = np.flatnonzero(np.isfinite(sim) & (pool.ai == "") & ~pool.human_any)
    return rows.astype(np.int64), 1.0 - sim[rows]


@dataclass(frozen=True)
class _Evidence:
    primary: int
    settlers: list[int]
    table: SignalTable
    model: Any
    dec: Any
    wrong: np.ndarray


def _labels(pool: Pool, prev: np.ndarray | None) -> np.ndarray:
    """(N,) the label each pair trains on: human, else the audited AI winner (swapped where
    the previous iteration flipped it); "" where none."""
    winner = np.isin(pool.ai, [A, B])
    labels = np.where(winner, pool.ai, "")
    was_flipped = (prev == Action.FLIP.value) & winner if prev is not None else np.zeros(len(pool.ai), dtype=bool)
    labels[was_flipped] = np.where(pool.ai[was_flipped] == A, B, A)
    human_win = np.isin(pool.human, [A, B])
    labels[human_win] = pool.human[human_win]
    return labels


def _evidence(pool: Pool, config: Config, raw: np.ndarray, labels: np.ndarray, weights: np.ndarray,
              it: int, *, release: bool = False) -> _Evidence:
    """Steps 2-4 on the pool's votes (``pool.votes``): sibling margins, signals, prior, error model, flips and
    trust; ``release``: the pool's text rows are dropped once the signal table is built, its vote tensors once
    the prior is (nothing after reads them)."""
    sel = config.selection
    votes = pool.votes
    if votes is None:
        raise ValueError("the pool holds no votes (read_pool reads them)")
    primary = votes.judges.index(pool.primary_judge)  # the pool's: its labels are the table's
    settlers = [votes.judges.index(s) for s in settler_names(config)
                if s in votes.judges and s != pool.primary_judge]  # strongest first, as the pool settled
    winner, human_win = np.isin(pool.ai, [A, B]), np.isin(pool.human, [A, B])
    # what the other labels of each prompt say (the same labels and weights as the RM)
    sibling = sibling_margins(*pool.text_ids(), np.where(labels == A, 1.0, np.where(labels == B, -1.0, 0.0)),
                              weights=weights)
    length_a, length_b = pool.lengths()
    table = signal_table(votes.votes, primary, judge_names=votes.judges, rm_margin=raw,
                         length_a=length_a, length_b=length_b, p_a=votes.p_a,
                         coverage=coverage(votes), sibling_margin=sibling, settlers=settlers,
                         settle_only=(~np.isin(audited_labels(votes.votes, primary, coverage=coverage(votes))[0],
                                               [A, B]) if config.escalation.settle == "ties" else None))
    if release:
        del length_a, length_b
        pool.release_rows(votes=False)
    prior = prior_wrong(table, votes.votes, primary, rm_margin=raw, method=sel.prior)
    if release:
        del votes
        pool.release_rows()
    wrong = np.where(human_win & winner, (pool.human != pool.ai).astype(float), np.nan)
    model = fit_error_model(table, prior, wrong, prior_strength=sel.prior_strength, seed=sel.seed + it)
    # calibrated flips and trust, only for pairs without any human answer
    dec = decide(np.where(pool.human_any & ~human_win, np.nan, model.p_wrong), wrong,
                 flip_min_precision=sel.flip_min_precision, trust_max_error=sel.trust_max_error,
                 min_evidence=sel.min_evidence)
    return _Evidence(primary, settlers, table, model, dec, wrong)


def select_signals(ledger: Ledger, config: Config, *, it: int, rows: list[dict], pool: Pool,
                   factory: Callable[[], RewardModel] | None, progress: bool = False,
                   owner: IterationOwner | None = None, judges: Sequence[Judge] | None = None) -> IterationReport:
    """Decide one iteration with the signals strategy and record it (see the module docstring).

    With ``[escalation] judges``, the judge cascade (:func:`.escalation.escalate`) runs on
    this iteration's first P(wrong); the evidence is then refit on the new votes before the
    batch is drawn (``judges``: the opened escalation judges, default from their specs).

    Called by the iteration's owner (``owner``): the decisions are written fenced by its lease.
    """
    _check(config)
    sel = config.selection
    n = len(pool.ai)
    ids = pool.ids
    if pool.votes is None:
        pool.votes = read_votes(ledger, ids)
    judge_names, labeled = pool.votes.judges, pool.votes.labeled  # the tensors go in _evidence
    # 1. the reward model's margins on the current labels
    prev = previous_actions(ledger, pool, rows[-1]["id"] if rows else None)
    labels = _labels(pool, prev)
    human_win = np.isin(pool.human, [A, B])
    alpha = schedule(it, amplification=sel.amplification, back_off=sel.back_off)[0]
    weights = np.where(human_win, human_weights(pool, rows, config, alpha), 1.0)
    factory = factory or make_factory(ledger, config, progress=progress)
    train = labels != ""
    raw = cross_fit_margins(factory, *pool.texts(), labels.astype(str), train=train, weights=weights,
                            folds=sel.folds, seed=sel.seed + it, progress=progress)
    # The curve of the oriented margins (a stat) while little else is held: its sort and smoothing
    # are ~100 B a pair for a moment (with an escalation cascade the labels change: computed after).
    curve = None if cascade(config) else _curve(pool, raw)
    # 2-4. signals, prior, error model; flips and trust
    real_rows, real_dis = _real_candidates(pool)
    ev = _evidence(pool, config, raw, labels, weights, it, release=not cascade(config))
    escalated = None
    if cascade(config):
        # Escalate where the answer is worth the most on this P(wrong), then refit on the new votes.
        escalated = escalate(ledger, config, judges=judges, progress=progress, pool=pool,
                             scores=(ev.model.p_wrong, ev.dec.is_("trust")))
        pool = read_pool(ledger, config, table=stored_table(factory))
        if pool.votes is None:
            pool.votes = read_votes(ledger, ids)
        judge_names, labeled = pool.votes.judges, pool.votes.labeled
        labels = _labels(pool, prev)
        real_rows, real_dis = _real_candidates(pool)
        ev = _evidence(pool, config, raw, labels, weights, it, release=True)
    primary, settlers, table, model, dec, wrong = ev.primary, ev.settlers, ev.table, ev.model, ev.dec, ev.wrong
    winner = np.isin(pool.ai, [A, B])
    margin_of = np.where(winner, np.where(pool.ai == A, raw, -raw), raw)
    # The decision phase reads ids, labels and these: the text rows, the vote tensors and the
    # training arrays go first (at 1M pairs ~150 MB of the peak).
    n_train = int(train.sum())
    per_judge = label_judge_counts(pool, judge_names)
    del labels, weights, train, raw
    pool.release_rows()
    # The stats that read whole columns, before the decision arrays exist (a lower peak at 1M pairs).
    if curve is None:  # after an escalation cascade: over its labels
        curve = analyze_curve(margin_of[winner]).summary() if winner.any() else {}
    checked = rm_check(pool, np.where(winner, margin_of, np.nan), ledger)
    # ... the trusted region certified as a set (issue 21): fixed-sequence testing over thresholds
    # of P(wrong). Flips: per pair (decide), and sets certified by a uniform audit (loop.flip_audit);
    # a set checked on earlier suspects (selection.guarantee.flip_set) flipped at a precision
    # below 0.5 on dev (docs/benchmarks.md, issue 21), so it is not used.
    scored = np.where(pool.human_any & ~np.isin(pool.human, [A, B]), np.nan, model.p_wrong)
    open_pairs = winner & ~pool.human_any & np.isfinite(scored)
    trusted = trusted_region(scored, wrong, candidates=open_pairs, alpha=sel.trust_alpha, delta=sel.trust_delta)
    del scored, open_pairs
    certified = np.full(n, _NONE, dtype=np.int8)  # a code a pair: _NONE, _TRUST or _FLIP
    certified[trusted.members] = _TRUST
    certified[dec.is_("flip")] = _FLIP
    # ... and the flips an audit certified (the previous batch's, and earlier ones still open)
    audit = (previous_audit(ledger, pool, rows[-1]["id"] if rows else None, delta=sel.trust_delta)
             if sel.flip_audit > 0 else no_audit(n))
    certified[audit.flipped] = _FLIP
    # What the batch does not read goes before it is drawn: the error model (its P(wrong) is the
    # score), the labels' errors, the judge and label columns of the table (at 1M pairs ~30 MB).
    evidence_stats = {"settled": {judge_names[k]: int(np.sum((table.judge == k) & winner)) for k in settlers},
                      "error_model": model.summary(), "calibration": dec.calibration.summary(),
                      "errors": int(np.nansum(wrong)), "n": int(np.isfinite(wrong).sum())}
    signal_names, signal_values = table.names, table.values
    p_wrong = model.p_wrong
    del ev, table, model, wrong
    # 5. the batch
    shard = in_shard(ids, sel.shard, sel.seed)
    inconsistent = (pool.ai == TIE_INCONSISTENT) & ~pool.human_any & shard
    suspect = winner & ~pool.human_any & shard
    eligible = suspect | inconsistent
    score = np.where(inconsistent, np.nan, p_wrong)  # no label to audit: no P(wrong)
    del p_wrong
    budget = int(round(sel.budget * int(winner.sum())))
    suspect_share = 1 - sel.explore - sel.real_share - sel.tie_share
    # This batch's audit region: suspects not flipped by an audit (those stay explorable).
    to_ask = np.where(suspect & ~audit.flipped, score, np.nan)
    audited = (audit_region(to_ask, eligible=suspect & ~audit.flipped, budget=int(round(suspect_share * budget)),
                            min_mean=sel.flip_audit) if sel.flip_audit > 0 else np.zeros(n, dtype=bool))
    batch = allocate(to_ask, budget=budget, eligible=suspect, tie=inconsistent, audit=audited,
                     real_dissimilarity=real_dis,
                     shares={Kind.SUSPECT.value: suspect_share,
                             Kind.REAL.value: sel.real_share, Kind.EXPLORE.value: sel.explore,
                             Kind.TIE.value: sel.tie_share}, seed=sel.seed + it)
    del to_ask
    # What the rows still read of the evidence: the signals and bounds of the rows that keep a full
    # reason (asked, flipped, kept); the signal table goes before the decision arrays are built
    # (at 1M pairs 40 MB of the peak).
    asked_rows = [int(real_rows[idx]) if kind == Kind.REAL.value else int(idx) for kind, idx in zip(batch.kind, batch.index)]
    kept = np.union1d(np.flatnonzero(eligible & (certified != _NONE)), np.asarray(asked_rows, dtype=np.int64))
    signals_kept = signal_values[kept]
    bounds_kept = dec.bounds(kept)
    flip_min = dec.flip_min_precision
    del signal_values, dec
    # Decision rows: every candidate (AI winner or inconsistent, no human answer, in the shard).
    ranks = np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)
    by_score = np.nan_to_num(score, nan=-1.0)
    np.negative(by_score, out=by_score)
    order = np.argsort(by_score, kind="stable")
    del by_score
    ranks[order] = np.arange(n, dtype=ranks.dtype)
    del order
    # Per-pair action and region as int8 codes into _ACTIONS / _REGIONS (0: not a candidate; a
    # byte a pair); the asked pairs' kind and priority by row (the batch: a few percent of them).
    action = np.zeros(n, dtype=np.int8)
    for code, act in _ACTION.items():
        action[eligible & (certified == code)] = _ACTIONS.index(act)
    region = np.zeros(n, dtype=np.int8)
    for act, reg in _REGION.items():
        region[action == _ACTIONS.index(act)] = _REGIONS.index(reg)
    region[inconsistent] = _REGIONS.index(INCONSISTENT)
    asked_of: dict[int, tuple[str, float]] = {}
    for kind, idx, pr in zip(batch.kind, batch.index, batch.priority):
        row = int(real_rows[idx]) if kind == Kind.REAL.value else int(idx)
        asked_of[row] = (str(kind), float(pr))
        action[row], region[row] = _ACTIONS.index(Action.ASK.value), _REGIONS.index(str(kind))
    del certified, eligible, suspect, shard
    per_code = np.bincount(action, minlength=len(_ACTIONS))
    counts = {k.value: int(per_code[_ACTIONS.index(k.value)]) for k in Action}
    stats: dict[str, Any] = {
        "strategy": Strategy.SIGNALS.value, "pool": int(winner.sum()), "candidates": int(np.count_nonzero(action)),
        "train": n_train,
        "human_labeled": int(human_win.sum()), "budget": budget, "counts": counts,
        "kinds": batch.counts(), "primary_judge": judge_names[primary], "judges": labeled,
        "label_judges": per_judge,
        "inconsistent": int(np.sum(pool.ai == TIE_INCONSISTENT)),
        "settled": evidence_stats["settled"],
        "error_model": evidence_stats["error_model"], "prior": sel.prior,
        "calibration": evidence_stats["calibration"],
        "certified": {"trusted": trusted.as_dict(), "flips": audit.summary()},
        "audit": {"region": int(audited.sum()), "min_mean": sel.flip_audit},
        "curve": curve,
        "gate": {"open": counts[Action.FLIP.value] > 0, "errors": evidence_stats["errors"], "n": evidence_stats["n"],
                 "lower_bound": None,
                 "reason": f"flip where the calibrated lower bound >= {sel.flip_min_precision:g}; "
                           f"trusted region: {trusted.reason}"},
        "rm_check": checked,
    }
    if escalated is not None:
        stats["escalation"] = escalated.summary()

    def decided():  # candidate rows a page at a time (no index array of every candidate)
        for start in range(0, n, _ROW_PAGE):
            yield from (np.flatnonzero(action[start:start + _ROW_PAGE]) + start).tolist()

    def decision_rows():  # one at a time: a million pairs never hold a million dicts
        for i in decided():
            a, reg = _ACTIONS[action[i]], _REGIONS[region[i]]
            kind, pr = asked_of.get(i, (None, 0.0))
            if a == Action.DROP.value:  # its code (action, region) is its reason: derived when shown
                yield {"iteration": it, "pair_id": ids[i], "action": a, "region": reg,
                       "margin": float(margin_of[i]), "rank": int(ranks[i]), "priority": batch_priority(it, pr),
                       # only P(wrong): the quality estimate's population needs it (loop.quality)
                       "reason": {**({} if _f(score[i]) is None else {"p_wrong": round(float(score[i]), 6)}),
                                  **({"audit": it} if audited[i] else {})}}
                continue
            slot = int(np.searchsorted(kept, i))
            calibrated, lower, upper = bounds_kept[slot]
            why = _why(a, reg, kind, score[i], trusted, flip_min, lower, audit, i)
            reason = {"action": a, "region": reg, "kind": kind, "why": why,
                      "audit": it if audited[i] else None,
                      "audit_flip": int(audit.source[i]) if audit.flipped[i] else None,
                      "p_wrong": _f(score[i]), "calibrated": _f(calibrated), "lower": _f(lower),
                      "upper": _f(upper), "margin": _f(margin_of[i]), "primary_judge": judge_names[primary],
                      "label_judge": str(pool.label_judge[i]) or None,
                      "signals": {k: round(float(v), 4) for k, v in zip(signal_names, signals_kept[slot]) if v}}
            yield {
                "iteration": it, "pair_id": ids[i], "action": a, "region": reg, "margin": float(margin_of[i]),
                "rank": int(ranks[i]), "priority": batch_priority(it, pr),
                "reason": {k: v for k, v in reason.items() if v is not None},
            }
    iterations_db.record_selection(ledger, it, decision_rows(), stats, fence=owner.fence if owner else None)
    asked = pool.pairs_at(np.flatnonzero(action == _ACTIONS.index(Action.ASK.value)))
    return IterationReport(it, counts, stats, None, asked)


def signals_params(config: Config) -> dict[str, Any]:
    """The settings of this strategy recorded in the iteration's params."""
    sel = config.selection
    return dict(prior=sel.prior, prior_strength=sel.prior_strength, explore=sel.explore,
                real_share=sel.real_share, trust_max_error=sel.trust_max_error, trust_alpha=sel.trust_alpha,
                trust_delta=sel.trust_delta, tie_share=sel.tie_share, flip_audit=sel.flip_audit)


STRATEGY = SelectionStrategy(Strategy.SIGNALS.value, select_signals, signals_params)


def _why(action: str, region: str, kind: str | None, score: float, trusted: Any, flip_min: float,
         lower: float, audit: AuditFlips, i: int) -> str:
    if action == Action.ASK.value:
        return {Kind.SUSPECT.value: f"P(AI label wrong) {score:.2f}, among the highest",
                Kind.EXPLORE.value: "uniform exploration sample: keeps the calibration measured",
                Kind.REAL.value: "REAL candidate: a dissimilar pair without a label",
                Kind.TIE.value: "the label judge contradicted itself across orders and no escalation judge settled "
                                "it: the tie share"}.get(kind or "", kind or "")
    if region == INCONSISTENT:
        return "the judge of the AI label contradicted itself across orders: never trusted"
    if action == Action.FLIP.value and audit.flipped[i]:
        src = int(audit.source[i])
        c = audit.certificate
        if c is not None and src == audit.iteration:
            return (f"certified by the audit of iteration {src}: {c.errors} of {c.labels} sampled AI labels wrong, "
                    f"precision > 1/2 with probability >= {1 - trusted.delta:g}")
        return f"certified by the audit of iteration {src}"
    if action == Action.FLIP.value:
        return f"calibrated P(wrong) lower bound {lower:.2f} >= {flip_min:g}"
    if action == Action.KEEP.value:
        return (f"in the trusted region (P(wrong) <= {trusted.threshold:.3g}): disagreement <= {trusted.level:g} "
                f"with probability {1 - trusted.delta:g}")
    return "neither flip nor trust proven: the AI label stays"


def _curve(pool: Pool, raw: np.ndarray) -> dict[str, Any]:
    """The margin curve's summary over the pairs with an AI winner: ``raw`` (N,) r(A) - r(B),
    oriented to the audited label."""
    winner = np.isin(pool.ai, [A, B])
    if not winner.any():
        return {}
    return analyze_curve(np.where(pool.ai == A, raw, -raw)[winner]).summary()


def _f(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)

"""The RLTHF loop on a workspace: select -> label -> retrain, one resumable iteration at a time.

An iteration (:func:`select_iteration`) first runs the judge cascade when ``[escalation]``
names judges (:mod:`rlthf_plugin.loop.escalation`), then reads the pool (:mod:`rlthf_plugin.loop.pool`),
opens its ``iterations`` row and hands it to the strategy ``selection.strategy`` names
(:mod:`rlthf_plugin.loop.strategy`): the RLTHF paper's margin curve
(:mod:`~rlthf_plugin.loop.strategy_margin_curve`) or every signal against the AI label
(:mod:`~rlthf_plugin.loop.strategy_signals`). The strategy trains, decides and records one
``decisions`` row per pair in one transaction.

A crash before the decisions are recorded leaves the iteration ``selecting``; the next call
redoes it. After that it is ``selected``; the service's worker
(:mod:`rlthf_plugin.service.worker`) takes it on through ``pushing``, ``pushed`` and
``labeled``. :mod:`rlthf_plugin.loop.oracle` answers an iteration's asked pairs from ground
truth (the simulated annotator) and evaluates the curated labels against it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..config import Config
from ..errors import ConfigError, RlthfError
from ..models.judge import Judge
from ..models.reward import RewardModel
from ..pairs import A, B
from ..selection.rlthf import schedule
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..vocab import SELECTING_STATES, STRATEGIES
from . import strategy_margin_curve, strategy_signals
from .cascade import cascade
from .escalation import escalate
from .owner import IterationOwner, owned
from .pool import make_factory, read_pool, stored_table
from .strategy import IterationReport, SelectionStrategy

#: ``selection.strategy`` -> the strategy that decides an iteration.
STRATEGY_OF: dict[str, SelectionStrategy] = {
    s.name: s for s in (strategy_signals.STRATEGY, strategy_margin_curve.STRATEGY)}


def select_iteration(ledger: Ledger, config: Config, *, factory: Callable[[], RewardModel] | None = None,
                     progress: bool = False, owner: IterationOwner | None = None,
                     judges: Sequence[Judge] | None = None) -> IterationReport:
    """Run one iteration (escalate, train, curve, decide) and record it; see the module docstring.

    With ``[escalation] judges`` the judge cascade runs before the human batch is drawn
    (:func:`.escalation.escalate`; ``judges``: the opened escalation judges, default opened
    from their specs), so the signals, the error model and the batch see its verdicts; what
    it did is the iteration's ``escalation`` stat (signals) or param (margin-curve).

    Runs as the iteration's owner (``owner``, or a fresh one for the call): raises
    :class:`~rlthf_plugin.errors.LeaseHeldError` when another process moves the iteration,
    and its writes are fenced by the lease.
    """
    with owned(ledger, owner) as o:
        return _select_iteration(ledger, config, factory, progress, o, judges)


def _select_iteration(ledger: Ledger, config: Config, factory: Callable[[], RewardModel] | None, progress: bool,
                      owner: IterationOwner, judges: Sequence[Judge] | None = None) -> IterationReport:
    sel = config.selection
    rows = iterations_db.iteration_rows(ledger)
    if rows and rows[-1]["state"] in SELECTING_STATES:  # a crashed iteration: redo it
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
    strategy = STRATEGY_OF[sel.strategy]
    # The signals strategy escalates on its own P(wrong) and refits; the others before reading the pool.
    own = strategy is strategy_signals.STRATEGY
    escalated = escalate(ledger, config, judges=judges, progress=progress) if cascade(config) and not own else None
    # The embedding reward model over the workspace's vector store reads the pool as columns.
    factory = factory or make_factory(ledger, config, progress=progress)
    pool = read_pool(ledger, config, table=stored_table(factory))
    if not pool.pairs:
        raise RlthfError("the workspace has no pairs: run 'rlthf import' first")
    params = {"budget": sel.budget, "shard": sel.shard, "amplification": alpha, "back_off": beta,
              "reward_model": sel.reward_model, "head": sel.head, "folds": sel.folds, "flip": sel.flip,
              "flip_min_precision": sel.flip_min_precision, "probe": sel.probe, "audit": sel.audit,
              "seed": sel.seed, "ground_truth": sel.ground_truth, "strategy": sel.strategy,
              "primary_judge": pool.primary_judge}
    params.update(strategy.params(config))
    if escalated is not None:
        params["escalation"] = escalated.summary()
    iterations_db.begin_iteration(ledger, it, params, fence=owner.fence)
    if not np.isin(pool.ai, [A, B]).any():
        raise RlthfError("no pair has an AI label with a winner (A or B): import or judge AI labels first")
    return strategy.select(ledger, config, it=it, rows=rows, pool=pool, factory=factory, progress=progress,
                           owner=owner, **({"judges": judges} if own else {}))


__all__ = ["STRATEGY_OF", "select_iteration"]

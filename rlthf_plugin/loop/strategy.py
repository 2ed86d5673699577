"""The interface every selection strategy of the loop implements, and what they share.

A strategy (:mod:`~rlthf_plugin.loop.strategy_margin_curve`,
:mod:`~rlthf_plugin.loop.strategy_signals`) decides one iteration on the pool that
:func:`rlthf_plugin.loop.iteration.select_iteration` read and opened: it trains, scores,
decides and records the decisions (fenced by the owner's lease), and returns an
:class:`IterationReport`. :func:`~rlthf_plugin.loop.iteration.select_iteration` only
dispatches on ``selection.strategy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..config import Config
from ..models.reward import RewardModel
from ..pairs import A, B, PreferencePair
from ..selection.rlthf import Region, Selection, mcnemar_exact
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from .owner import IterationOwner
from .pool import Pool


@dataclass
class IterationReport:
    iteration: int
    counts: dict[str, int]
    stats: dict[str, Any]
    selection: Selection
    pairs: list[PreferencePair]    # the candidates, aligned with the selection


class Select(Protocol):
    """Decide iteration ``it`` on ``pool`` and record it (``rows``: the iterations before it)."""

    def __call__(self, ledger: Ledger, config: Config, *, it: int, rows: list[dict], pool: Pool,
                 factory: Callable[[], RewardModel] | None, progress: bool = False,
                 owner: IterationOwner | None = None) -> IterationReport:
        ...


@dataclass(frozen=True)
class SelectionStrategy:
    """One value of ``selection.strategy``: its name, how it decides, and the settings it
    adds to the iteration's recorded params."""

    name: str
    select: Select
    params: Callable[[Config], dict[str, Any]] = field(default=lambda config: {})


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


__all__ = ["IterationReport", "Select", "SelectionStrategy", "rm_check"]

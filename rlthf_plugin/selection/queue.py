"""Merge selections (RLTHF asks, REAL candidates, ...) into one prioritized task list.

Pure: each source is pair ids with a priority in [0, 1] and a reason; a pair chosen by
several sources appears once, with the highest weighted priority and every reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class QueueItem:
    """One task of the queue: the pair, its priority (higher first), and why it was chosen."""

    pair_id: str
    priority: float
    reasons: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Source:
    """The pairs one method selected.

    Attributes
    ----------
    name : str
        The method ("rlthf", "real", ...), added to each reason as ``source``.
    pair_ids : sequence of str, length K
    priority : array of float, shape (K,)
        In [0, 1]; higher = label first.
    reasons : sequence of mapping, length K
    weight : float, default 1.0
        Multiplies this source's priorities when sources are merged.
    """

    name: str
    pair_ids: Sequence[str]
    priority: np.ndarray
    reasons: Sequence[Mapping[str, Any]]
    weight: float = 1.0


def build_queue(sources: Sequence[Source], *, limit: int | None = None) -> list[QueueItem]:
    """Merge sources into one list, highest priority first (ties: by pair id).

    Parameters
    ----------
    sources : sequence of Source
    limit : int or None, default None
        Keep at most this many items.

    Returns
    -------
    list of QueueItem
    """
    for s in sources:
        pr = np.asarray(s.priority, dtype=float)
        if not (len(s.pair_ids) == pr.shape[0] == len(s.reasons)) or pr.ndim != 1:
            raise ValueError(f"source '{s.name}': pair_ids ({len(s.pair_ids)}), priority {pr.shape} and reasons "
                             f"({len(s.reasons)}) must have the same length")
        if pr.size and (pr.min() < 0 or pr.max() > 1 or not np.isfinite(pr).all()):
            raise ValueError(f"source '{s.name}': priorities must be finite and in [0, 1]")
        if s.weight < 0:
            raise ValueError(f"source '{s.name}': weight must be >= 0, got {s.weight}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    best: dict[str, float] = {}
    reasons: dict[str, list[Mapping[str, Any]]] = {}
    for s in sources:
        for pid, p, why in zip(s.pair_ids, np.asarray(s.priority, dtype=float), s.reasons):
            score = float(p) * s.weight
            best[pid] = max(best.get(pid, -1.0), score)
            reasons.setdefault(pid, []).append({"source": s.name, **why})
    order = sorted(best, key=lambda pid: (-best[pid], pid))
    if limit is not None:
        order = order[:limit]
    return [QueueItem(pid, best[pid], tuple(reasons[pid])) for pid in order]

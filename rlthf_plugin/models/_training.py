"""What the reward-model and DPO trainers share: checking triples, amplification, JSON metadata."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def check_triples(prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> int:
    """The common length of the three sequences; ValueError naming the lengths when they differ."""
    n = len(prompts)
    if len(chosen) != n or len(rejected) != n:
        raise ValueError(f"prompts, chosen and rejected must have one length; got {n}, {len(chosen)}, {len(rejected)}")
    return n


def amplify(n: int, weights: Sequence[float] | None) -> np.ndarray:
    """Row indices with row i repeated ``weights[i]`` times (amplification alpha).

    Parameters
    ----------
    n : int
        Number of rows.
    weights : sequence of float, shape (n,), or None
        Non-negative integers (4.0 is fine, 2.5 is not); 0 leaves the row out. None = all 1.

    Returns
    -------
    np.ndarray of int, shape (sum(weights),)
    """
    if weights is None:
        return np.arange(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    bad = np.flatnonzero((w < 0) | (np.abs(w - np.round(w)) > 1e-9) | ~np.isfinite(w))
    if bad.size:
        raise ValueError(f"weights are repeat counts (non-negative integers); row {int(bad[0])} has {w[bad[0]]}")
    return np.repeat(np.arange(n), np.round(w).astype(int))


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made plain and anything else unknown made a string (for metadata JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


__all__ = ["amplify", "check_triples", "jsonable"]

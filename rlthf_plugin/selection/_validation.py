"""Input checks of the selection functions: run once at the public function.

Each check raises ``ValueError`` (or ``TypeError``) naming the sizes it found and returns
the input converted to the array the computation expects; the underscored twins of the
public functions trust what these return.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_embeddings(embeddings: Any, name: str = "embeddings") -> np.ndarray:
    """A finite float64 ``(N, d)`` array with no all-zero row, L2-normalised per row."""
    x = np.asarray(embeddings)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has shape {x.shape}: d must be at least 1")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ValueError(f"{name} has {bad} row(s) with NaN or inf values out of {x.shape[0]}")
    norms = np.linalg.norm(x, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(f"{name} has {zero.size} all-zero row(s) (first: row {zero[0]}); "
                         "cosine similarity is undefined for them")
    unit: np.ndarray = x / norms[:, None]
    return unit


def check_groups(groups: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (N,) int, labels (G,))``: ``labels[codes] == groups``, labels sorted."""
    g = np.asarray(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be 1-D (N,), got shape {g.shape}")
    if g.shape[0] != n:
        raise ValueError(f"groups has {g.shape[0]} entries but embeddings has {n} rows")
    labels, codes = np.unique(g, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), labels


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def check_fraction(value: Any, name: str = "fraction") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0 < float(value) <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return float(value)


def check_allowed_pairs(allowed: Any, codes: np.ndarray) -> np.ndarray:
    """An ``(M, 2)`` int array of row-index pairs, both rows of one group, distinct."""
    a = np.asarray(allowed)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"allowed must have shape (M, 2), got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"allowed must hold integer row indices, got dtype {a.dtype}")
    n = codes.shape[0]
    out = (a < 0) | (a >= n)
    if out.any():
        raise ValueError(f"allowed has {int(out.any(axis=1).sum())} pair(s) with a row index outside [0, {n})")
    if (a[:, 0] == a[:, 1]).any():
        raise ValueError(f"allowed has {int((a[:, 0] == a[:, 1]).sum())} pair(s) of a row with itself")
    cross = codes[a[:, 0]] != codes[a[:, 1]]
    if cross.any():
        raise ValueError(f"allowed has {int(cross.sum())} pair(s) whose two rows belong to different groups")
    return a.astype(np.int64)


def check_same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}")


def check_vector(value: Any, name: str) -> np.ndarray:
    """A float64 ``(N,)`` array (NaN allowed; the caller says what NaN means)."""
    x = np.asarray(value, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {x.shape}")
    return x


def check_aligned(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 ``(N,)`` arrays of the same length."""
    x, y = check_vector(a, names[0]), check_vector(b, names[1])
    check_same_shape(x, y, names)
    return x, y

"""The sibling margin: what the other labels of the same prompt say about a pair.

Preference data often holds several responses per prompt (MT-bench: 6 models a question;
PandaLM: up to 5 a task; REAL candidates), and so several labeled pairs per prompt. Their
labels imply an order of the prompt's responses. A label that goes against the order its
siblings imply (a cycle: A > B by this label, but B > C > A by the others) is suspect,
however confident the judge was. The reward model cannot see this: it scores every
response from its embedding alone, across all prompts.

Per prompt, a Bradley-Terry model is fit on its labeled pairs (one free score per distinct
response, an L2 penalty ``l2`` that keeps unconnected scores at 0)::

    minimise  sum_k w_k * log(1 + exp(-(s[winner_k] - s[loser_k])))  +  l2 / 2 * |s|^2

The sibling margin of a pair is ``s[A] - s[B]`` fit *without the pair's own label*
(leave-one-out; so a pair's own label never argues for itself, and the error model can be
fit on it): exact for an unlabeled pair (it was not in the fit), and for a labeled pair
the standard approximate leave-one-out of a penalised GLM, one Newton step from the full
fit with the pair removed (Sherman-Morrison on the pair's rank-one Hessian term)::

    m_loo = m - w * (1 - p) * q / (1 - w * p * (1 - p) * q),   q = x' H^-1 x,  x = e_win - e_lose

where ``m``, ``p = sigmoid(m)`` are the pair's fitted margin and probability (oriented to
its label's winner) and ``H`` the penalised Hessian of its prompt at the optimum. A pair
whose responses no other label of its prompt touches gets exactly 0 (no evidence).

Prompts are solved together, batched by their number of distinct responses ``m`` (at
most ``_MAX_CELLS`` Hessian cells a batch), so the cost is a few batched ``m x m`` solves
per Newton step, not a Python loop per pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: At most this many Hessian cells (prompts x m x m) are solved in one batch (memory; each prompt is
#: solved on its own, so the batch size changes no result).
_MAX_CELLS = 1 << 20  # 8 MB a Hessian stack (the solve and the inverse copy it): a batch costs ~30 MB, not ~100


def sibling_margins(group: Any, a: Any, b: Any, label: Any, *, weights: Any = None, l2: float = 1.0,
                    steps: int = 8) -> np.ndarray:
    """Leave-one-out Bradley-Terry margin of each pair from the other pairs of its prompt.

    Parameters
    ----------
    group : array-like of int, shape (N,)
        The prompt of each pair (any integer id; pairs of one prompt share it).
    a, b : array-like of int, shape (N,)
        Ids of the two responses (equal ids within a prompt = the same response).
    label : array-like of float, shape (N,)
        ``+1`` A preferred, ``-1`` B preferred, ``0`` or ``NaN`` no label (not fit, scored).
    weights : array-like of float, shape (N,), optional
        Weight of each label in the fit (e.g. the amplification of human labels); 1 by
        default.
    l2 : float > 0, default 1.0
        The penalty on the scores (a prior of that many "draws" per response).
    steps : int >= 1, default 8
        Newton steps (the problem is strongly convex; 8 reach 1e-6 on the dev data).

    Returns
    -------
    ndarray of float, shape (N,)
        ``s(A) - s(B)`` without the pair's own label: > 0 = the siblings prefer A. Exactly 0
        where no other label of the prompt touches either response (no evidence; also for a
        pair of identical responses); near 0 where the siblings imply no order between them.
    """
    g, ia, ib = (_ints(x) for x in (group, a, b))  # int32 ids (a pool's text rows) are not copied
    y = np.nan_to_num(np.asarray(label, dtype=np.float64).reshape(-1))
    n = g.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    for name, arr in (("a", ia), ("b", ib), ("label", y), ("weights", w)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like group, got {arr.shape}")
    if not np.isin(y, [-1.0, 0.0, 1.0]).all():
        raise ValueError("label must hold +1 (A), -1 (B), 0 or NaN (no label)")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite and >= 0")
    if l2 <= 0 or steps < 1:
        raise ValueError(f"need l2 > 0 and steps >= 1, got {l2} and {steps}")
    out = np.zeros(n)
    if n == 0:
        return out
    # A prompt with a single pair has no siblings: its margin is 0 (exactly the leave-one-out
    # fit of an empty prompt), and most prompts of a large import are such: only the others
    # are solved.
    g_inv = _dense_codes(g)
    multi = np.flatnonzero(np.bincount(g_inv)[g_inv] > 1)
    del g_inv
    if multi.size == 0:
        return out
    if multi.size == n:  # every prompt has siblings: no subset to copy
        return _margins(g, ia, ib, y, w, l2, steps)
    sub = _margins(g[multi], ia[multi], ib[multi], y[multi], w[multi], l2, steps)
    out[multi] = sub
    return out


def _ints(x: Any) -> np.ndarray:
    """(N,) an integer id array as it is (int32 or int64), anything else as int64."""
    arr = np.asarray(x).reshape(-1)
    return arr if arr.dtype in (np.int32, np.int64) else arr.astype(np.int64)


def _index_dtype(n: int) -> type:
    """int32 for indices below 2**31 (half the bytes of int64), int64 above."""
    return np.int32 if n < 2**31 else np.int64


def _dense_codes(x: np.ndarray) -> np.ndarray:
    """(N,) int32 (int64 past 2**31 values): the rank of each value among the distinct values
    of ``x`` (``np.unique``'s inverse), by a presence table when the values are small
    non-negative ints (text rows, prompt ids: a byte per value instead of the sorted copies
    ``np.unique`` makes), else by :func:`_sorted_codes`."""
    if x.size and x.min() >= 0 and x.max() < 4 * x.size + (1 << 20):
        present = np.zeros(int(x.max()) + 1, dtype=bool)
        present[x] = True
        code: np.ndarray = np.cumsum(present, dtype=_index_dtype(present.size)) - 1
        out: np.ndarray = code[x]
        return out
    return _sorted_codes(x)


def _sorted_codes(x: np.ndarray) -> np.ndarray:
    """(N,) int32 (int64 past 2**31): ``np.unique(x, return_inverse=True)[1]`` by one sort,
    without ``np.unique``'s copies of ``x`` and int64 inverse (at a million pairs' 2N node keys,
    ~30 MB less at once)."""
    perm = np.argsort(x, kind="stable")
    sorted_x = x[perm]
    new = np.empty(x.size, dtype=bool)
    new[:1] = True
    np.not_equal(sorted_x[1:], sorted_x[:-1], out=new[1:])
    del sorted_x
    out: np.ndarray = np.empty(x.size, dtype=_index_dtype(x.size))
    out[perm] = np.cumsum(new, dtype=out.dtype) - 1
    return out


def _margins(g: np.ndarray, ia: np.ndarray, ib: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float,
             steps: int) -> np.ndarray:
    """:func:`sibling_margins` on validated arrays of pairs whose prompts have several pairs."""
    n = g.size
    out = np.zeros(n)
    # Nodes: distinct (prompt, response), one int64 key each (codes < 2N, so no overflow),
    # then the local index of each node within its prompt.
    g_code = _dense_codes(g)
    r_code = _dense_codes(np.concatenate([ia, ib]))
    n_resp = int(r_code.max()) + 1
    key = np.concatenate([g_code, g_code]).astype(np.int64)  # (2N,) prompt of each side, then its node key
    key *= n_resp
    key += r_code
    del r_code  # the (2N,) temporaries go as soon as they are used: a million pairs hold 16 MB each
    inv = _sorted_codes(key)
    node_group = np.empty(int(inv.max()) + 1, dtype=inv.dtype)
    node_group[inv] = key // n_resp
    del key
    # Keys sort by prompt first: each prompt's nodes are one run, prompts 0..G-1 in order.
    size = np.bincount(node_group)
    first = np.r_[0, np.cumsum(size)[:-1]].astype(inv.dtype)
    gidx = g_code
    local = node_group[inv]  # in place: inv - first[node_group[inv]]
    np.take(first, local, out=local)
    np.subtract(inv, local, out=local)
    la, lb = local[:n], local[n:]
    labeled = (y != 0) & (w > 0) & (la != lb)
    # Orient each label to (winner, loser).
    win = np.where(y > 0, la, lb)
    lose = np.where(y > 0, lb, la)
    m_of = size[gidx]
    for m in np.unique(m_of):
        in_m = np.flatnonzero(m_of == m)  # pairs whose prompt has m responses
        in_m = in_m[np.argsort(gidx[in_m], kind="stable")]
        prompts, starts = np.unique(gidx[in_m], return_index=True)
        per_chunk = max(1, _MAX_CELLS // int(m) ** 2)  # bounds the (prompts, m, m) Hessians' memory
        for c in range(0, prompts.size, per_chunk):
            chunk = prompts[c:c + per_chunk]
            rows = in_m[starts[c]:(starts[c + per_chunk] if c + per_chunk < prompts.size else in_m.size)]
            _solve(rows, np.searchsorted(chunk, gidx[rows]), chunk.size, int(m), la, lb, win, lose,
                   labeled, w, l2, steps, out)
    # No other label touches either response: the exact leave-one-out margin is 0 (the
    # approximation would leave a small residue; 0 exactly means "no evidence").
    node_a, node_b = inv[:n], inv[n:]
    deg = np.bincount(np.r_[node_a[labeled], node_b[labeled]], minlength=int(inv.max()) + 1)
    own = labeled.astype(np.int8)
    out[(deg[node_a] == own) & (deg[node_b] == own)] = 0.0
    return out


def _solve(rows: np.ndarray, pos: np.ndarray, n_prompts: int, m: int, la: np.ndarray, lb: np.ndarray,
           win: np.ndarray, lose: np.ndarray, labeled: np.ndarray, w: np.ndarray, l2: float, steps: int,
           out: np.ndarray) -> None:
    """Fit the prompts of one size class together and write the margins of ``rows``."""
    fit = rows[labeled[rows]]
    fp = pos[labeled[rows]]
    u, v, wt = win[fit], lose[fit], w[fit]
    s: np.ndarray = np.zeros((n_prompts, m))
    eye = np.eye(m)
    h: np.ndarray = np.empty(0)  # the last step's Hessians (steps >= 1)
    for _ in range(steps):
        d = s[fp, u] - s[fp, v]
        p = 1 / (1 + np.exp(-d))
        r = wt * (1 - p)  # minus the loss's derivative in d
        grad = l2 * s
        np.add.at(grad, (fp, u), -r)
        np.add.at(grad, (fp, v), r)
        c = wt * p * (1 - p)
        h = np.broadcast_to(l2 * eye, (n_prompts, m, m)).copy()
        np.add.at(h, (fp, u, u), c)
        np.add.at(h, (fp, v, v), c)
        np.add.at(h, (fp, u, v), -c)
        np.add.at(h, (fp, v, u), -c)
        s -= np.linalg.solve(h, grad[..., None])[..., 0]
    # Every pair: the full fit's s(A) - s(B) (exact for pairs that were not in the fit).
    out[rows] = s[pos, la[rows]] - s[pos, lb[rows]]
    if fit.size:
        hinv = np.linalg.inv(h)
        q = hinv[fp, u, u] + hinv[fp, v, v] - 2 * hinv[fp, u, v]
        d = s[fp, u] - s[fp, v]
        p = 1 / (1 + np.exp(-d))
        loo = d - wt * (1 - p) * q / np.maximum(1 - wt * p * (1 - p) * q, 1e-12)
        # Back to the pair's own A/B orientation.
        out[fit] = np.where(win[fit] == la[fit], loo, -loo)

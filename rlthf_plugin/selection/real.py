"""REAL: choose the pairs worth a label by the similarity of response embeddings.

Of the many responses a prompt has, a pair of dissimilar responses has a clearer
preference and fewer labeling errors (REAL, arXiv 2409.17169). Responses are embedded
without their prompt; the pairs of each prompt are scored by cosine similarity and chosen
by a strategy:

========  =================================================================================
easy      the least similar pairs first (the paper's recommendation)
hard      the most similar pairs first
centroid  k-means with k = 2 over the prompt's responses; the response nearest each
          centroid (then the next best such assignments)
random    uniformly random pairs (seeded): the baseline
========  =================================================================================

:func:`select_pairs` picks up to ``per_prompt`` distinct pairs per prompt;
:func:`select_from_pool` ranks a pool of existing pairs (one a prompt) and keeps the least
similar fraction. Both are pure: arrays in, a frozen dataclass with the similarity (the
reason) out. Groups of the same size are processed together as ``(g, s, s)`` Gram
tensors, so no Python loop runs over pairs or over the groups of one size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _validation as V

#: Largest Gram tensor (elements) built at once; bigger buckets are processed in chunks.
MAX_GRAM_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class PairSelection:
    """Pairs chosen by :func:`select_pairs`, ordered by group, then by rank.

    Attributes
    ----------
    group : ndarray, shape (M,)
        The group (prompt) label of each pair, as given in ``groups``.
    first, second : ndarray of int64, shape (M,)
        Row indices into ``embeddings`` of the pair's two responses; ``first < second``.
    similarity : ndarray of float64, shape (M,)
        Cosine similarity of the two responses, in [-1, 1]: the reason for the choice.
    rank : ndarray of int64, shape (M,)
        0 for the strategy's first choice in the group, 1 for the second, ...
    strategy : str
        The strategy that chose them.
    """

    group: np.ndarray
    first: np.ndarray
    second: np.ndarray
    similarity: np.ndarray
    rank: np.ndarray
    strategy: str

    def __len__(self) -> int:
        return int(self.first.shape[0])


@dataclass(frozen=True)
class PoolSelection:
    """Pairs kept by :func:`select_from_pool`, least similar first.

    Attributes
    ----------
    indices : ndarray of int64, shape (K,)
        Indices into the pool of the kept pairs, by increasing similarity (ties by index).
    similarity : ndarray of float64, shape (K,)
        Their cosine similarity: the reason.
    pool_similarity : ndarray of float64, shape (M,)
        The similarity of every pair of the pool, in pool order.
    """

    indices: np.ndarray
    similarity: np.ndarray
    pool_similarity: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])


# -- strategies: (E (g,s,d), sim (g,s,s), iu, ju, rng, options) -> scores (g,p), lower first --


def _score_easy(E: np.ndarray, sim: np.ndarray, iu: np.ndarray, ju: np.ndarray, rng: np.random.Generator,
                **_: Any) -> np.ndarray:
    return sim[:, iu, ju]


def _score_hard(E: np.ndarray, sim: np.ndarray, iu: np.ndarray, ju: np.ndarray, rng: np.random.Generator,
                **_: Any) -> np.ndarray:
    return -sim[:, iu, ju]


def _score_random(E: np.ndarray, sim: np.ndarray, iu: np.ndarray, ju: np.ndarray, rng: np.random.Generator,
                  **_: Any) -> np.ndarray:
    return rng.random((E.shape[0], iu.shape[0]))


def _score_centroid(E: np.ndarray, sim: np.ndarray, iu: np.ndarray, ju: np.ndarray, rng: np.random.Generator,
                    *, n_init: int, max_iter: int, **_: Any) -> np.ndarray:
    dist = np.sqrt(_kmeans2(E, rng, n_init=n_init, max_iter=max_iter))  # (g, s, 2)
    # The pair whose two responses sit nearest the two centroids, one each.
    nearest: np.ndarray = np.minimum(dist[:, iu, 0] + dist[:, ju, 1], dist[:, iu, 1] + dist[:, ju, 0])
    return nearest


#: Strategy name -> scorer of a bucket's pairs (lower score = chosen first).
STRATEGIES: dict[str, Callable[..., np.ndarray]] = {
    "easy": _score_easy,
    "hard": _score_hard,
    "centroid": _score_centroid,
    "random": _score_random,
}


def _kmeans2(E: np.ndarray, rng: np.random.Generator, *, n_init: int, max_iter: int) -> np.ndarray:
    """Batched k-means (k = 2, k-means++ seeding, best of ``n_init``) over ``(g, s, d)``.

    Returns the squared distance of every point to both final centroids, ``(g, s, 2)``.
    """
    g, s, _ = E.shape
    rows = np.arange(g)
    sq = np.einsum("gsd,gsd->gs", E, E)

    def sqdist(centers: np.ndarray) -> np.ndarray:  # (g, 2, d) -> (g, s, 2)
        cross = np.einsum("gsd,gkd->gsk", E, centers)
        d2: np.ndarray = np.maximum(sq[:, :, None] - 2 * cross + np.einsum("gkd,gkd->gk", centers, centers)[:, None, :],
                                    0.0)
        return d2

    best_inertia = np.full(g, np.inf)
    best = np.zeros((g, s, 2))
    for _ in range(n_init):
        c0 = E[rows, rng.integers(0, s, size=g)]
        d0 = np.maximum(sq - 2 * np.einsum("gsd,gd->gs", E, c0) + (c0 * c0).sum(1)[:, None], 0.0)
        total = d0.sum(1, keepdims=True)
        prob = np.where(total > 0, d0 / np.where(total > 0, total, 1), 1.0 / s)
        pick = (np.cumsum(prob, axis=1) < rng.random(g)[:, None]).sum(1).clip(max=s - 1)
        centers = np.stack([c0, E[rows, pick]], axis=1)
        for _ in range(max_iter):
            onehot = np.eye(2)[sqdist(centers).argmin(-1)]  # (g, s, 2)
            counts = onehot.sum(1)
            sums = np.einsum("gsk,gsd->gkd", onehot, E)
            new = np.where(counts[:, :, None] > 0, sums / np.maximum(counts, 1)[:, :, None], centers)
            done = np.allclose(new, centers, rtol=0, atol=1e-10)
            centers = new
            if done:
                break
        d = sqdist(centers)
        inertia = d.min(-1).sum(1)
        better = inertia < best_inertia - 1e-12
        best_inertia = np.where(better, inertia, best_inertia)
        best[better] = d[better]
    return best


def select_pairs(embeddings: Any, groups: Any, *, strategy: str = "easy", per_prompt: int = 1,
                 seed: int = 0, allowed: Any = None, n_init: int = 10, max_iter: int = 100) -> PairSelection:
    """Choose up to ``per_prompt`` distinct pairs of responses per prompt.

    Parameters
    ----------
    embeddings : array_like, shape (N, d)
        One row per response (embedded without its prompt). Rows are L2-normalised here;
        no row may be all zeros, NaN or inf.
    groups : array_like, shape (N,)
        The prompt (any sortable label: id string, int) each response answers.
    strategy : {"easy", "hard", "centroid", "random"}, default "easy"
        ``easy``: least similar first; ``hard``: most similar first; ``centroid``: k-means
        (k = 2) over the group, the responses nearest the two centroids first (pairs ranked
        by the sum of their distances to the two centroids, one response each); ``random``:
        a uniformly random order of the group's pairs.
    per_prompt : int, default 1
        Pairs per prompt (``K``); a pair is never chosen twice. A group with fewer pairs
        gives all of them; a group of one response gives none; a group of two gives its
        only pair.
    seed : int, default 0
        Seeds ``random`` and the k-means initialisation of ``centroid``; the same inputs
        and seed give the same pairs.
    allowed : array_like of int, shape (M, 2), optional
        If given, choose only among these pairs (row indices of two responses of one
        group), e.g. the pairs that already have labels. Default: every pair of a group.
    n_init : int, default 10
        k-means restarts for ``centroid`` (the lowest inertia wins).
    max_iter : int, default 100
        k-means iterations per restart.

    Returns
    -------
    PairSelection
        ``M <= G * per_prompt`` pairs with their similarity and rank.

    Raises
    ------
    ValueError
        On an unknown strategy (the message lists the valid ones) or inconsistent sizes.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    X = V.check_embeddings(embeddings)
    codes, labels = V.check_groups(groups, X.shape[0])
    per_prompt = V.check_positive_int(per_prompt, "per_prompt")
    n_init = V.check_positive_int(n_init, "n_init")
    max_iter = V.check_positive_int(max_iter, "max_iter")
    pairs = None if allowed is None else V.check_allowed_pairs(allowed, codes)
    return _select_pairs(X, codes, labels, strategy=strategy, per_prompt=per_prompt,
                         rng=np.random.default_rng(seed), allowed=pairs, n_init=n_init, max_iter=max_iter)


def _select_pairs(X: np.ndarray, codes: np.ndarray, labels: np.ndarray, *, strategy: str, per_prompt: int,
                  rng: np.random.Generator, allowed: np.ndarray | None, n_init: int,
                  max_iter: int) -> PairSelection:
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=labels.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.empty_like(codes)
    position[order] = np.arange(codes.shape[0]) - starts[codes[order]]
    score = STRATEGIES[strategy]
    out: list[tuple[np.ndarray, ...]] = []
    for s in np.unique(sizes[sizes >= 2]):
        s = int(s)
        iu, ju = np.triu_indices(s, 1)
        bucket = np.flatnonzero(sizes == s)
        step = max(1, MAX_GRAM_ELEMENTS // (s * s))
        for lo in range(0, bucket.shape[0], step):
            gids = bucket[lo:lo + step]
            members = order[starts[gids][:, None] + np.arange(s)]  # (g, s) row indices
            E = X[members]
            sim = np.einsum("gsd,gtd->gst", E, E)
            scores = score(E, sim, iu, ju, rng, n_init=n_init, max_iter=max_iter)
            if allowed is not None:
                scores = np.where(_allowed_mask(allowed, codes, position, gids, s)[:, iu, ju], scores, np.inf)
            k = min(per_prompt, iu.shape[0])
            top = np.argsort(scores, axis=1, kind="stable")[:, :k]  # (g, k)
            ok = np.isfinite(np.take_along_axis(scores, top, axis=1))
            g_idx = np.broadcast_to(np.arange(gids.shape[0])[:, None], top.shape)
            a, b = members[g_idx, iu[top]], members[g_idx, ju[top]]
            out.append((gids[g_idx[ok]], np.minimum(a, b)[ok], np.maximum(a, b)[ok],
                        sim[g_idx, iu[top], ju[top]][ok], np.broadcast_to(np.arange(k), top.shape)[ok]))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return PairSelection(labels[empty], empty, empty.copy(), np.zeros(0), empty.copy(), strategy)
    gid, first, second, similarity, rank = (np.concatenate(parts) for parts in zip(*out))
    key = np.lexsort((rank, gid))
    return PairSelection(labels[gid[key]], first[key].astype(np.int64), second[key].astype(np.int64),
                         np.clip(similarity[key], -1.0, 1.0), rank[key].astype(np.int64), strategy)


def _allowed_mask(allowed: np.ndarray, codes: np.ndarray, position: np.ndarray, gids: np.ndarray,
                  s: int) -> np.ndarray:
    """``(g, s, s)`` booleans: which within-group pairs of these groups are allowed."""
    slot = np.full(codes.max() + 1, -1)
    slot[gids] = np.arange(gids.shape[0])
    mine = slot[codes[allowed[:, 0]]]
    a = allowed[mine >= 0]
    mask = np.zeros((gids.shape[0], s, s), dtype=bool)
    g = slot[codes[a[:, 0]]]
    i, j = position[a[:, 0]], position[a[:, 1]]
    mask[g, i, j] = True
    mask[g, j, i] = True
    return mask


def pair_similarity(embeddings_a: Any, embeddings_b: Any) -> np.ndarray:
    """Cosine similarity of row ``i`` of ``embeddings_a`` with row ``i`` of ``embeddings_b``.

    Parameters
    ----------
    embeddings_a, embeddings_b : array_like, shape (M, d)
        The two responses of each pair (no all-zero rows).

    Returns
    -------
    ndarray of float64, shape (M,)
        Values in [-1, 1].
    """
    a = V.check_embeddings(embeddings_a, "embeddings_a")
    b = V.check_embeddings(embeddings_b, "embeddings_b")
    V.check_same_shape(a, b, ("embeddings_a", "embeddings_b"))
    cos: np.ndarray = np.clip(np.einsum("md,md->m", a, b), -1.0, 1.0)
    return cos


def select_from_pool(embeddings_a: Any, embeddings_b: Any, *, fraction: float = 0.5) -> PoolSelection:
    """Rank a pool of pairs by similarity and keep the least similar ``fraction``.

    Parameters
    ----------
    embeddings_a, embeddings_b : array_like, shape (M, d)
        Embeddings of the two responses of each pair of the pool (one pair a prompt, as
        in the paper; any pool works).
    fraction : float in (0, 1], default 0.5
        Share of the pool to keep; ``ceil(fraction * M)`` pairs are kept.

    Returns
    -------
    PoolSelection
        The kept pairs' indices and similarities, least similar first, and the
        similarity of every pair of the pool.
    """
    fraction = V.check_fraction(fraction)
    sim = pair_similarity(embeddings_a, embeddings_b)
    return _select_from_pool(sim, fraction)


def _select_from_pool(sim: np.ndarray, fraction: float) -> PoolSelection:
    keep = math.ceil(fraction * sim.shape[0] - 1e-9)
    idx = np.argsort(sim, kind="stable")[:keep].astype(np.int64)
    return PoolSelection(idx, sim[idx], sim)

"""Cross-fitting: margins where no pair is scored by a reward model that trained on it.

The loop's orchestration of a :class:`~rlthf_plugin.models.reward.RewardModel`: split the
training pairs into folds, fit one model per fold on the others (in one pass when the model
offers ``fit_folds``), score each pair with the model that did not see it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..models.reward import RewardModel
from ..models.vectors import TextRows, choose, take


def cross_fit_margins(factory: Callable[[], RewardModel], prompts: Sequence[str], response_a: Sequence[str],
                      response_b: Sequence[str], labels: np.ndarray, *, train: np.ndarray,
                      weights: np.ndarray | None = None, folds: int = 5, seed: int = 0,
                      progress: bool = False) -> np.ndarray:
    """Margins ``r(a) - r(b)`` where no pair is scored by a model that trained on it.

    Parameters
    ----------
    factory : callable returning an untrained RewardModel
    prompts, response_a, response_b : sequences of str, length N
    labels : ndarray of {"A", "B"}, shape (N,)
        The training label of each pair (ignored where ``train`` is False).
    train : ndarray of bool, shape (N,)
        Pairs in the training set. They are split into ``folds`` folds, each scored by a
        model fit on the other folds; pairs outside the training set get the mean margin
        of the fold models. ``folds <= 1`` fits one model on all training pairs and scores
        every pair with it (in-sample margins, as in the paper).
    weights : ndarray of float, shape (N,), optional
        Training weights (amplification).

    Returns
    -------
    ndarray of float, shape (N,)
    """
    n = len(prompts)
    labels, train = np.asarray(labels), np.asarray(train, dtype=bool)
    if labels.shape != (n,) or train.shape != (n,):
        raise ValueError(f"labels {labels.shape} and train {train.shape} must be ({n},)")
    if not np.isin(labels[train], ["A", "B"]).all():
        raise ValueError("training labels must be 'A' or 'B'")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    # Texts, or a pool's text rows in the vector store (TextRows: no per-pair objects).
    prompts, a, b = (t if isinstance(t, TextRows) else list(t) for t in (prompts, response_a, response_b))

    def triples(idx: np.ndarray):
        is_a = labels[idx] == "A"
        ai, bi = take(a, idx), take(b, idx)
        return take(prompts, idx), choose(is_a, ai, bi), choose(is_a, bi, ai)

    def fit(idx: np.ndarray) -> RewardModel:
        return factory().fit(*triples(idx), weights=w[idx])

    tr = np.flatnonzero(train)
    if tr.size == 0:
        raise ValueError("no training pairs")
    if folds <= 1 or tr.size < 2 * folds:
        return np.asarray(fit(tr).margins(prompts, a, b), dtype=np.float64)
    out = np.zeros(n)
    rest = np.flatnonzero(~train)
    fold_of = np.random.default_rng(seed).permutation(tr.size) % folds
    # Models that can fit every fold from one pass over the pairs do so.
    fit_folds = getattr(factory(), "fit_folds", None)
    models = None
    if fit_folds is not None:
        models = fit_folds(*triples(tr), fold_of=fold_of, weights=w[tr])
    for k in tqdm(range(folds), desc="cross-fitting", disable=not progress, leave=False):
        model = models[k] if models is not None else fit(tr[fold_of != k])
        held = tr[fold_of == k]
        idx = np.concatenate([held, rest])
        m = np.asarray(model.margins(take(prompts, idx), take(a, idx), take(b, idx)))
        out[held] = m[: held.size]
        out[rest] += m[held.size:] / folds
    return out


__all__ = ["cross_fit_margins"]

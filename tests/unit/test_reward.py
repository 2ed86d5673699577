"""The embedding reward model on a handful of real texts (packaged MiniLM, cached in the ledger)."""

import numpy as np
import pytest

from rlthf_plugin.loop.cross_fit import cross_fit_margins
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.reward import EmbeddingRewardModel, RewardModel
from rlthf_plugin.models.vectors import EmbeddingCache

PROMPTS = ["How do I boil an egg?", "What is the capital of France?", "Give me a tip for sleeping better.",
           "How do I reverse a list in Python?", "Name a primary color.", "What is 2 + 2?"]
GOOD = ["Put the egg in boiling water for about nine minutes, then cool it in cold water.",
        "The capital of France is Paris.", "Keep a regular schedule and avoid screens before bed.",
        "Use my_list[::-1] or my_list.reverse().", "Red is a primary color.", "2 + 2 equals 4."]
BAD = ["I don't know.", "Bananas are yellow.", "Sleep is overrated.", "Python is a snake.", "Maybe.", "Five."]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder(max_length=32)


def test_fit_learns_preferences_and_uses_the_cache(workspace, embedder):
    model = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=100, lr=0.05)
    assert isinstance(model, RewardModel)
    with pytest.raises(RuntimeError, match="not trained"):
        model.margins(PROMPTS[:1], GOOD[:1], BAD[:1])
    model.fit(PROMPTS * 3, GOOD * 3, BAD * 3)
    m = model.margins(PROMPTS, GOOD, BAD)
    assert m.shape == (6,) and (m > 0).all()
    assert np.allclose(model.margins(PROMPTS, BAD, GOOD), -m)
    assert np.allclose(model.score(PROMPTS, GOOD) - model.score(PROMPTS, BAD), m)
    # Every distinct text went to the ledger once; a fresh cache finds them all.
    cached = EmbeddingCache(embedder, workspace.ledger, progress=False)
    assert cached._load([__import__("rlthf_plugin.pairs", fromlist=["text_hash"]).text_hash(t) for t in GOOD]).keys()
    assert len(model.table.rows) == 18


def test_weights_and_checks(workspace, embedder):
    model = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=5)
    with pytest.raises(ValueError, match="differ in length"):
        model.fit(PROMPTS, GOOD, BAD[:2])
    with pytest.raises(ValueError, match="weights"):
        model.fit(PROMPTS, GOOD, BAD, weights=[1.0])
    with pytest.raises(ValueError, match="unknown head"):
        EmbeddingRewardModel(embedder, head="tree")
    # Weight 0 on the flipped copies: the model follows the weighted labels.
    w = np.r_[np.ones(6), np.zeros(6)]
    fit = model.spawn(epochs=100, lr=0.05).fit(PROMPTS * 2, GOOD + BAD, BAD + GOOD, weights=w)
    assert (fit.margins(PROMPTS, GOOD, BAD) > 0).all()


def test_cross_fit_scores_each_pair_out_of_fold(workspace, embedder):
    base = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=60, lr=0.05, head="mlp", hidden=16)
    prompts, a, b = PROMPTS * 2, GOOD + BAD, BAD + GOOD
    labels = np.array(["A"] * 6 + ["B"] * 6)
    train = np.ones(12, dtype=bool)
    train[-2:] = False
    oof = cross_fit_margins(base.spawn, prompts, a, b, labels, train=train, folds=3)
    insample = cross_fit_margins(base.spawn, prompts, a, b, labels, train=train, folds=0)
    assert oof.shape == insample.shape == (12,)
    assert not np.allclose(oof, insample)
    assert (insample[:6] > 0).all()
    with pytest.raises(ValueError, match="'A' or 'B'"):
        cross_fit_margins(base.spawn, prompts, a, b, np.array(["tie"] * 12), train=train)


def _diffs(model, prompts, chosen, rejected):
    p, c, r = model.table.index(prompts), model.table.index(chosen), model.table.index(rejected)
    return (model._phi(p, c) - model._phi(p, r)) / model._scale


def test_newton_steps_reach_the_penalised_bradley_terry_optimum(workspace, embedder):
    """Many Newton steps land on sklearn's L2 logistic regression of the same loss."""
    from sklearn.linear_model import LogisticRegression

    prompts, chosen, rejected = PROMPTS * 2, GOOD + BAD[:3] + GOOD[3:], BAD + GOOD[:3] + BAD[3:]
    w = np.linspace(0.5, 1.5, 12)
    model = EmbeddingRewardModel(embedder, ledger=workspace.ledger, newton_steps=25, l2=0.05)
    model.fit(prompts, chosen, rejected, weights=w)
    x = _diffs(model, prompts, chosen, rejected).astype(np.float64)
    w = w / w.mean()
    # sum w softplus(-beta.x) + lam/2 |beta|^2 == logistic loss on (x, 1) and (-x, 0), each weight w/2.
    ref = LogisticRegression(C=1 / (0.05 * w.sum()), fit_intercept=False, tol=1e-10, max_iter=10000)
    ref.fit(np.r_[x, -x], np.r_[np.ones(12), np.zeros(12)], sample_weight=np.r_[w, w] / 2)
    assert np.allclose(model._beta, ref.coef_[0], atol=1e-4 * np.abs(ref.coef_).max())
    # One step is the closed form: (G/4 + lam I)^-1 g/2.
    one = model.spawn(newton_steps=1).fit(prompts, chosen, rejected, weights=w)
    gram, grad = (x * w[:, None]).T @ x, w @ x
    closed = np.linalg.solve(gram / 4 + 0.05 * w.sum() * np.eye(x.shape[1]), grad / 2)
    assert np.allclose(one._beta, closed, rtol=1e-3, atol=1e-6)


def test_fit_folds_solves_each_fold_without_its_pairs(workspace, embedder):
    """The one-pass cross-fit: model k is the closed-form fit on G - G_k, g - g_k, and each
    training pair is scored by the model of its own (held-out) fold."""
    base = EmbeddingRewardModel(embedder, ledger=workspace.ledger, l2=0.2)
    prompts, a, b = PROMPTS * 3, GOOD + BAD + GOOD, BAD + GOOD + BAD
    labels = np.array(["A"] * 6 + ["B"] * 6 + ["B"] * 3 + ["A"] * 3)  # the last three noisy
    chosen = [x if lab == "A" else y for x, y, lab in zip(a, b, labels)]
    rejected = [y if lab == "A" else x for x, y, lab in zip(a, b, labels)]
    fold_of = np.arange(18) % 3
    models = base.spawn().fit_folds(prompts, chosen, rejected, fold_of=fold_of)
    x = _diffs(models[0], prompts, chosen, rejected).astype(np.float64)
    for k, model in enumerate(models):
        out = fold_of != k
        xk = x[out]
        beta = np.linalg.solve(xk.T @ xk / 4 + 0.2 * out.sum() * np.eye(x.shape[1]), xk.sum(0) / 2)
        assert np.allclose(model._beta, beta, rtol=1e-3, atol=1e-6)
    # Model 0 never saw fold 0's labels: flipping them changes the other models only.
    flip = fold_of == 0
    chosen2 = [r if f else c for c, r, f in zip(chosen, rejected, flip)]
    rejected2 = [c if f else r for c, r, f in zip(chosen, rejected, flip)]
    again = base.spawn().fit_folds(prompts, chosen2, rejected2, fold_of=fold_of)
    assert np.allclose(again[0]._beta, models[0]._beta, rtol=1e-5, atol=1e-7)
    assert not np.allclose(again[1]._beta, models[1]._beta, rtol=1e-2)
    train = np.ones(18, dtype=bool)
    oof = cross_fit_margins(base.spawn, prompts, a, b, labels, train=train, folds=3, seed=1)
    insample = cross_fit_margins(base.spawn, prompts, a, b, labels, train=train, folds=0)
    assert not np.allclose(oof, insample) and (insample[:6] > 0).all()
    assert base.spawn(solver="adamw").fit_folds(PROMPTS, GOOD, BAD, fold_of=np.arange(6) % 2) is None
    with pytest.raises(ValueError, match="unknown solver"):
        base.spawn(solver="sgd")


def test_gram_sample_keeps_every_weighted_pair_and_stays_unbiased():
    from rlthf_plugin.models.reward import _gram_sample

    w = np.ones(10_000, dtype=np.float32)
    w[:50] = 3.0  # amplified human labels
    rows, wr = _gram_sample(w, 1_000, seed=0)
    assert rows.size == 1_000 and set(range(50)) <= set(rows.tolist())
    assert np.isclose(wr.sum(), w.sum(), rtol=1e-6)  # the sums estimate the full ones
    assert (wr[np.isin(rows, np.arange(50))] == 3.0).all()
    all_rows, same = _gram_sample(w, 20_000, seed=0)
    assert all_rows.size == 10_000 and (same == w).all()

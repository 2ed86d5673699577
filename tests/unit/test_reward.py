"""The embedding reward model on a handful of real texts (packaged MiniLM, cached in the ledger)."""

import numpy as np
import pytest

from rlthf_plugin.models.embeddings import EmbeddingCache, SentenceEmbedder
from rlthf_plugin.models.reward import EmbeddingRewardModel, RewardModel, cross_fit_margins

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

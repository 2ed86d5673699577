"""CausalLMEmbedder on a tiny Llama built locally: pooling, normalisation, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from .tiny_lm import build_tiny_causal_lm

from rlthf_plugin.errors import ConfigError
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.vectors import EmbeddingCache
from rlthf_plugin.models.llm_embeddings import CausalLMEmbedder, load_embedder, mean_pool


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


TEXTS = ["The cat sat on the mat.",
         "Quarterly tax filings are due at the end of the month, and the wind and the night " * 6,
         "def add(a, b): return a + b"]


def test_vectors_are_unit_and_padding_does_not_change_them(tiny_lm):
    emb = CausalLMEmbedder(str(tiny_lm), batch_size=3, progress=False)
    together = emb.encode(TEXTS)  # one batch: the short texts are padded to the long one
    assert together.shape == (3, 32) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    alone = np.stack([CausalLMEmbedder(str(tiny_lm), batch_size=1, progress=False).encode([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[2], atol=1e-3)


def test_it_is_the_masked_mean_of_the_last_hidden_layer(tiny_lm):
    from transformers import AutoModel, AutoTokenizer

    emb = CausalLMEmbedder(str(tiny_lm), max_length=8, progress=False)
    got = emb.encode([TEXTS[1]])[0]
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    ids = tok(TEXTS[1], truncation=True, max_length=8, return_tensors="pt")
    assert ids["input_ids"].shape[1] == 8  # truncated to max_length
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(str(tiny_lm))(**ids).last_hidden_state[0]
    want = hidden.mean(0) / hidden.mean(0).norm()
    assert np.allclose(got, want.numpy(), atol=1e-5)


def test_mean_pool_ignores_masked_positions():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [100.0, -100.0]]])
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0]]))
    assert torch.allclose(pooled, torch.tensor([[2.0, 2.0]]) / (8 ** 0.5))


def test_cached_by_text_hash(tiny_lm, workspace):
    emb = CausalLMEmbedder(str(tiny_lm), progress=False)
    calls = []
    real_encode = emb.encode
    emb.encode = lambda texts: calls.append(list(texts)) or real_encode(texts)
    cache = EmbeddingCache(emb, workspace.ledger, progress=False)
    first = cache.embed(TEXTS)
    again = cache.embed(TEXTS[::-1])
    assert np.allclose(again, first[::-1]) and len(calls) == 1


def test_load_embedder_specs(tiny_lm):
    assert isinstance(load_embedder("packaged"), SentenceEmbedder)
    lm = load_embedder(f"hf:{tiny_lm}", max_length=128)
    assert isinstance(lm, CausalLMEmbedder) and lm.name == f"lm-mean:{tiny_lm}:128"
    with pytest.raises(ConfigError, match="unknown embedder 'bert'"):
        load_embedder("bert")

import numpy as np

from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.vectors import EmbeddingCache


class CountingEmbedder:
    """A real embedder wrapped to count what it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, []

    def encode(self, texts):
        self.seen.extend(texts)
        return self.inner.encode(texts)


def test_packaged_minilm_embeds_and_cache_never_repeats(workspace):
    emb = CountingEmbedder(SentenceEmbedder())
    cache = EmbeddingCache(emb, workspace.ledger, chunk=2, progress=False)
    texts = ["a cat sat on the mat", "a kitten sat on a rug", "quarterly tax filing", "a cat sat on the mat"]
    v = cache.embed(texts)
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]  # real semantics, not noise
    assert sorted(emb.seen) == sorted(set(texts))
    again = cache.embed(texts[::-1])
    assert np.allclose(again, v[::-1]) and len(emb.seen) == 3

"""Vectors of texts: where they are kept (:class:`VectorStore`), the cache that embeds each
text once ever (:class:`EmbeddingCache`) and the in-memory table a reward model indexes
(:class:`TextTable`).

The workspace's :class:`~rlthf_plugin.store.ledger.Ledger` is a :class:`VectorStore`
(its ``embeddings`` table, :mod:`rlthf_plugin.store.embeddings`); this module never imports
the store: callers pass one in.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..pairs import text_hash
from .embedder import Embedder


class VectorStore(Protocol):
    """Where :class:`EmbeddingCache` keeps vectors: by (embedder name, text hash)."""

    def load_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """text hash -> (d,) float32 vector, for the hashes stored under ``model``."""
        ...

    def save_vectors(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (N, d) under ``model`` and ``hashes`` (N,); existing keys are kept."""
        ...


class ReadOnlyVectors:
    """A :class:`VectorStore` that reads ``store`` and never writes it: vectors saved here
    stay in memory, at most ``capacity`` of them (least recently used dropped first). For
    a reader that must not grow the ledger (the ML backend scoring texts it is sent)."""

    def __init__(self, store: VectorStore, *, capacity: int = 20_000):
        self.store = store
        self.capacity = capacity
        self._memory: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def load_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for h in hashes:
                v = self._memory.get((model, h))
                if v is not None:
                    self._memory.move_to_end((model, h))
                    out[h] = v
        rest = [h for h in hashes if h not in out]
        if rest:
            out.update(self.store.load_vectors(model, rest))
        return out

    def save_vectors(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for h, v in zip(hashes, vectors):
                self._memory[(model, h)] = np.asarray(v, dtype=np.float32)
                self._memory.move_to_end((model, h))
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)

    def __len__(self) -> int:
        return len(self._memory)


class EmbeddingCache:
    """An embedder in front of a :class:`VectorStore`: each distinct text is embedded once, ever.

    ``embed(texts)`` returns ``(N, d)`` float32 rows in the order of ``texts``; texts
    already stored (same embedder name, same text hash) are read, the rest are encoded in
    chunks of ``chunk`` texts and stored as they come, so a crash loses at most one chunk
    of work.
    """

    def __init__(self, embedder: Embedder, store: VectorStore, *, chunk: int = 2048, progress: bool = True):
        self.embedder = embedder
        self.store = store
        self.chunk = chunk
        self.progress = progress

    def _load(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return self.store.load_vectors(self.embedder.name, hashes)

    def embed(self, texts: Iterable[str], *, desc: str = "embedding") -> np.ndarray:
        texts = list(texts)
        hashes = [text_hash(t) for t in texts]
        unique = dict(zip(hashes, texts))
        known = self._load(list(unique))
        todo = [(h, t) for h, t in unique.items() if h not in known]
        bar = tqdm(total=len(todo), desc=desc, unit=" texts", disable=not self.progress or not todo)
        for start in range(0, len(todo), self.chunk):
            part = todo[start:start + self.chunk]
            vectors = self.embedder.encode([t for _, t in part])
            self.store.save_vectors(self.embedder.name, [h for h, _ in part], vectors)
            known.update({h: v for (h, _), v in zip(part, vectors)})
            bar.update(len(part))
        bar.close()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[h] for h in hashes]).astype(np.float32, copy=False)


class TextTable:
    """Distinct texts -> rows of one embedding matrix, filled through an embedder or cache.

    Pairs only hold row indices, so a million pairs cost two int arrays, not two copies of
    their embeddings; each distinct text is embedded once (and, through an
    :class:`EmbeddingCache`, once ever).
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], *, progress: bool = False):
        self._embed = embed
        self.progress = progress
        self.rows: dict[str, int] = {}  # text hash -> row
        self._by_text: dict[str, int] = {}  # text -> row: Python caches a str's hash, sha256 runs once a text
        self.lengths = np.zeros(0, dtype=np.float32)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    @classmethod
    def of(cls, embedder: Embedder, store: VectorStore | None = None, *, progress: bool = False) -> "TextTable":
        """A table filled by ``embedder``, through an :class:`EmbeddingCache` on ``store`` when given."""
        if store is None:
            return cls(embedder.encode, progress=progress)
        cache = EmbeddingCache(embedder, store, progress=progress)
        return cls(lambda texts: cache.embed(texts), progress=progress)

    def index(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) int64 rows of ``texts`` in :attr:`matrix`, embedding the texts not seen yet."""
        by_text = self._by_text
        # Deduplicate only the unseen texts: after the first call a lookup is all it costs.
        unseen = list(dict.fromkeys(t for t in texts if t not in by_text))
        new: dict[str, str] = {}
        pending: list[tuple[str, str]] = []
        for t in unseen:
            h = text_hash(t)
            if h in self.rows:
                by_text[t] = self.rows[h]
            else:
                new.setdefault(h, t)
                pending.append((t, h))
        if new:
            vectors = np.asarray(self._embed(list(new.values())), dtype=np.float32)
            start = len(self.rows)
            for i, h in enumerate(new):
                self.rows[h] = start + i
            self.matrix = vectors if not start else np.concatenate([self.matrix, vectors])
            lengths = np.log1p([len(t) for t in new.values()]).astype(np.float32)
            self.lengths = np.concatenate([self.lengths, lengths])
        for t, h in pending:
            by_text[t] = self.rows[h]
        return np.fromiter((by_text[t] for t in texts), dtype=np.int64, count=len(texts))

    def __len__(self) -> int:
        return len(self.rows)

    def truncate(self, n: int) -> None:
        """Forget every text after the first ``n`` rows (texts added for scoring only), so
        a long-lived table does not grow with every text it is asked about."""
        if len(self.rows) <= n:
            return
        self.rows = {h: r for h, r in self.rows.items() if r < n}
        self._by_text = {t: r for t, r in self._by_text.items() if r < n}
        self.matrix, self.lengths = self.matrix[:n].copy(), self.lengths[:n].copy()


__all__ = ["EmbeddingCache", "ReadOnlyVectors", "TextTable", "VectorStore"]

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


class ArrayVectorStore(VectorStore, Protocol):
    """A :class:`VectorStore` read as one array per embedder (the workspace's vector files)."""

    def rows_of(self, model: str, hashes: Sequence[str]) -> np.ndarray:
        """(N,) int64 row of each text hash in :meth:`matrix`, -1 where not stored."""
        ...

    def matrix(self, model: str) -> np.ndarray:
        """(rows, d) float32 (memory-mapped): every vector stored under ``model``."""
        ...

    def release(self, model: str) -> None:
        """Drop the matrix's pages from resident memory (read again on the next access)."""
        ...

    def gather(self, model: str, rows: np.ndarray) -> np.ndarray:
        """(N, d) float32 copy of ``rows`` of :meth:`matrix`, read without mapping them."""
        ...


def is_array_store(store: object) -> bool:
    """Whether ``store`` is read as one array (:class:`ArrayVectorStore`)."""
    return all(callable(getattr(store, m, None)) for m in ("rows_of", "matrix", "release", "gather"))


def fill_store(embedder: Embedder, store: VectorStore, texts: Sequence[str], *, chunk: int = 2048,
               progress: bool = False, desc: str = "embedding") -> int:
    """Embed the ``texts`` whose hash ``store`` lacks (distinct texts once, ``chunk`` at a time,
    each chunk stored as it comes: a crash loses at most one chunk); returns how many."""
    unique = dict(zip((text_hash(t) for t in texts), texts))
    if is_array_store(store):
        hashes = list(unique)
        todo = [(h, unique[h]) for h, r in zip(hashes, store.rows_of(embedder.name, hashes)) if r < 0]
    else:
        known = store.load_vectors(embedder.name, list(unique))
        todo = [(h, t) for h, t in unique.items() if h not in known]
    bar = tqdm(total=len(todo), desc=desc, unit=" texts", disable=not progress or not todo)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        store.save_vectors(embedder.name, [h for h, _ in part], embedder.encode([t for _, t in part]))
        bar.update(len(part))
    bar.close()
    return len(todo)


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
        if is_array_store(store):
            return StoredTextTable(embedder, store, progress=progress)  # type: ignore[return-value]
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


    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(N, d) float32 copy of the matrix's ``rows``."""
        return self.matrix[rows]

    def release(self) -> None:
        """Nothing to release: the matrix is in memory."""


class TextRows:
    """Texts as their rows in a :class:`StoredTextTable`'s matrix: what a million-pair pool
    passes to the reward model instead of the texts (``rows`` (N,) int32 or int64, ``lengths`` (N,)
    float32 ``log1p(characters)``). Indexing with an int array or a bool mask gives a
    :class:`TextRows`; :meth:`StoredTextTable.index` takes them as they are."""

    def __init__(self, rows: np.ndarray, lengths: np.ndarray, model: str):
        rows = np.asarray(rows)
        # int32 rows (a pool's columns) stay int32: a copy to int64 would be 4 more bytes a text
        self.rows = rows if rows.dtype in (np.int32, np.int64) else rows.astype(np.int64)
        self.lengths, self.model = np.asarray(lengths, np.float32), model

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            return int(self.rows[idx])
        return TextRows(self.rows[idx], self.lengths[idx], self.model)

    @staticmethod
    def where(cond: np.ndarray, x: "TextRows", y: "TextRows") -> "TextRows":
        """Element-wise ``x`` where ``cond`` else ``y``."""
        return TextRows(np.where(cond, x.rows, y.rows), np.where(cond, x.lengths, y.lengths), x.model)


def take(texts, idx: np.ndarray):
    """``texts`` at ``idx`` (int array): a :class:`TextRows` or a list of texts."""
    return texts[idx] if isinstance(texts, TextRows) else [texts[i] for i in idx]


def choose(cond: np.ndarray, x, y):
    """``x[i] if cond[i] else y[i]``, for :class:`TextRows` or lists of texts."""
    if isinstance(x, TextRows):
        return TextRows.where(np.asarray(cond, dtype=bool), x, y)
    return [a if c else b for c, a, b in zip(cond, x, y)]


class StoredTextTable:
    """A :class:`TextTable` over an :class:`ArrayVectorStore`: :attr:`matrix` is the store's
    memory-mapped matrix itself (no copy, no per-text vectors in memory), rows are the
    store's; texts the store lacks are embedded and appended first."""

    def __init__(self, embedder: Embedder, store: ArrayVectorStore, *, progress: bool = False, chunk: int = 2048):
        self.embedder, self.store, self.progress, self.chunk = embedder, store, progress, chunk
        self._by_text: dict[str, int] = {}
        self.lengths = np.zeros(0, dtype=np.float32)  # (rows,) log1p(characters), set for indexed rows
        self.matrix = store.matrix(embedder.name)

    def index(self, texts: Sequence[str] | TextRows) -> np.ndarray:
        """(N,) int64 rows of ``texts`` in :attr:`matrix`, embedding the texts the store lacks."""
        if isinstance(texts, TextRows):  # already rows of this store (a pool's columns)
            if texts.model != self.embedder.name:
                raise ValueError(f"rows of {texts.model!r} given to a table of {self.embedder.name!r}")
            self.matrix = self.store.matrix(self.embedder.name)
            if self.lengths.size < len(self.matrix):
                self.lengths = np.concatenate([self.lengths, np.zeros(len(self.matrix) - self.lengths.size,
                                                                      dtype=np.float32)])
            self.lengths[texts.rows] = texts.lengths
            return texts.rows
        by_text = self._by_text
        unseen = list(dict.fromkeys(t for t in texts if t not in by_text))
        if unseen:
            by_text.update(zip(unseen, self.rows_for(unseen).tolist()))
        return np.fromiter((by_text[t] for t in texts), dtype=np.int64, count=len(texts))

    def rows_for(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) int64 rows of ``texts``, embedding and appending those the store lacks; unlike
        :meth:`index`, nothing is remembered per text (a pool read a page at a time)."""
        name = self.embedder.name
        hashes = [text_hash(t) for t in texts]
        rows = self.store.rows_of(name, hashes)
        if (rows < 0).any():
            missing = [t for t, r in zip(texts, rows) if r < 0]
            fill_store(self.embedder, self.store, missing, chunk=self.chunk, progress=self.progress)
            rows = self.store.rows_of(name, hashes)
        self.matrix = self.store.matrix(name)
        if self.lengths.size < len(self.matrix):
            self.lengths = np.concatenate([self.lengths, np.zeros(len(self.matrix) - self.lengths.size,
                                                                  dtype=np.float32)])
        self.lengths[rows] = np.log1p([len(t) for t in texts])
        return rows

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(N, d) float32 copy of the matrix's ``rows``, read from the store without mapping
        (RSS stays the rows asked for; :meth:`ArrayVectorStore.gather`)."""
        return self.store.gather(self.embedder.name, rows)

    def release(self) -> None:
        """Drop the mapped matrix's pages from resident memory (a scan stays bounded)."""
        self.store.release(self.embedder.name)

    def forget_index(self) -> None:
        """Drop the store's in-memory index of text ids when it has one (rebuilt when texts are
        looked up again): a pool read as rows needs no lookup until it is read again."""
        forget = getattr(self.store, "forget_index", None)
        if callable(forget):
            forget(self.embedder.name)


__all__ = ["ArrayVectorStore", "EmbeddingCache", "ReadOnlyVectors", "StoredTextTable", "TextRows", "TextTable", "VectorStore", "choose",
           "fill_store", "is_array_store", "take"]

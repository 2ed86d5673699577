"""The embedding cache table: vectors by (embedder name, text hash), float32 bytes.

A workspace keeps its vectors in files (:mod:`.vector_files`); this table is what a ledger
opened on its own uses, and where older workspaces cached them (moved into the files on
first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from . import schema as S
from ._sql import insert_ignore, select_in

if TYPE_CHECKING:
    from .ledger import Ledger


def load_vectors(ledger: Ledger, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """text hash -> (d,) float32 vector, for the hashes cached under ``model``."""
    t = S.embeddings
    with ledger.engine.connect() as conn:
        return {h: np.frombuffer(blob, dtype=np.float32) for h, blob in select_in(
            conn, lambda c: sa.select(t.c.text_hash, t.c.vector).where(t.c.model == model, t.c.text_hash.in_(c)),
            hashes)}


def save_vectors(ledger: Ledger, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
    """Cache ``vectors`` (N, d) under ``model`` and their text ``hashes`` (N,); existing keys are kept."""
    rows = [{"model": model, "text_hash": h, "dim": int(v.shape[0]),
             "vector": np.ascontiguousarray(v, dtype=np.float32).tobytes()} for h, v in zip(hashes, vectors)]
    with ledger.engine.begin() as conn:
        insert_ignore(conn, S.embeddings, rows)


def has_vectors(ledger: Ledger, model: str) -> bool:
    """Whether the table caches any vector under ``model``."""
    t = S.embeddings
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(t.c.text_hash).where(t.c.model == model).limit(1)).first() is not None


def iter_vector_pages(ledger: Ledger, model: str, *, page: int = 20000) -> Iterator[tuple[list[str], np.ndarray]]:
    """(hashes, (n, d) float32) of every vector cached under ``model``, ``page`` rows at a time
    (keyset pages by text hash: each page is its own short read)."""
    t = S.embeddings
    after = ""
    while True:
        with ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.text_hash, t.c.vector).where(t.c.model == model, t.c.text_hash > after)
                                .order_by(t.c.text_hash).limit(page)).fetchall()
        if not rows:
            return
        yield [h for h, _ in rows], np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
        after = rows[-1][0]


def delete_vectors(ledger: Ledger, model: str) -> int:
    """Delete every vector cached under ``model``; returns how many rows went."""
    t = S.embeddings
    with ledger.engine.begin() as conn:
        return conn.execute(t.delete().where(t.c.model == model)).rowcount


__all__ = ["delete_vectors", "has_vectors", "iter_vector_pages", "load_vectors", "save_vectors"]

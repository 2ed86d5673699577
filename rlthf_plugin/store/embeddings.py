"""The embedding cache table: vectors by (embedder name, text hash), float32 bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

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


__all__ = ["load_vectors", "save_vectors"]

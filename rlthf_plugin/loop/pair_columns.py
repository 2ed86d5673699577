"""The pool's pairs as numpy columns: what a million-pair ``select`` holds instead of a
:class:`~rlthf_plugin.pairs.PreferencePair` (with its three texts) per pair.

:func:`read_columns` reads the ledger's pairs a page at a time; each page's texts are
turned into their rows in the vector store (:class:`~rlthf_plugin.models.vectors.StoredTextTable`,
which embeds and appends the texts the store lacks) and dropped. What stays per pair: its
id (16 bytes in one array, :class:`~rlthf_plugin.store.pair_ids.PairIds`), three int32 rows, two int32 lengths,
three float32 log-lengths and, for REAL candidates only, a similarity.
:class:`LedgerPairs` stands for the pool's ``pairs`` list: it reads the pairs it is asked
for from the ledger (a few asked pairs, or a page at a time when iterated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..models.vectors import StoredTextTable, TextRows
from ..pairs import PreferencePair
from ..store.ledger import Ledger
from ..store import schema as S
from ..store.pair_ids import HEX_DIGITS, PACKED, PairIds, encode_ids, pack_hex, unpack_hex
from ..store.pairs import iter_pair_pages

#: Pairs read from the ledger at a time.
PAGE = 20_000


@dataclass
class PairColumns:
    """Aligned (N,) columns of the pool's pairs, in pair-id order."""

    ids: PairIds              # (N,) the pair ids as one bytes array
    prompt: TextRows
    response_a: TextRows
    response_b: TextRows
    length_a: np.ndarray      # (N,) int32 characters of response A
    length_b: np.ndarray      # (N,) int32 characters of response B
    candidate: np.ndarray     # (N,) bool: a REAL candidate pair (origin "candidates" with a similarity)
    similarity: np.ndarray    # (N,) float64: its similarity (NaN elsewhere)


def read_columns(ledger: Ledger, table: StoredTextTable, *, page: int = PAGE) -> PairColumns:
    """Every pair of the ledger as columns (see the module docstring).

    The columns are allocated once for the pairs counted first (grown should an import add
    pairs meanwhile) and filled a page at a time: nothing that lives on is allocated between
    a page's short-lived objects, so the heap does not keep their holes (measured at 1M: a
    list of per-page arrays concatenated at the end left ~100 MB more resident)."""
    n = ledger.count(S.pairs)
    rows = np.zeros((n, 3), dtype=np.int32)  # rows of the store: int32 holds 2**31 texts
    logs = np.zeros((n, 3), dtype=np.float32)
    lengths = np.zeros((n, 2), dtype=np.int32)
    sim = np.full(n, np.nan)
    ids = np.zeros(n, dtype=f"S{PACKED}")  # the ledger's ids, packed; others (unpacked) widen it
    packed = True
    at = 0
    for chunk in iter_pair_pages(ledger, page=page):
        end = at + len(chunk)
        if end > len(rows):  # pairs imported since the count
            grow = max(end, 2 * len(rows)) - len(rows)
            rows, logs, lengths = (np.concatenate([x, np.zeros((grow, x.shape[1]), dtype=x.dtype)])
                                   for x in (rows, logs, lengths))
            sim = np.concatenate([sim, np.full(grow, np.nan)])
            ids = np.concatenate([ids, np.zeros(grow, dtype=ids.dtype)])
        page_ids = encode_ids(p.id for p in chunk)
        as_hex = pack_hex(page_ids) if packed else None
        if packed and as_hex is None:  # an id that is not the ledger's hex: keep every id as text
            ids, packed = np.concatenate([unpack_hex(ids[:at]), np.zeros(len(ids) - at, dtype=f"S{HEX_DIGITS}")]), False
        if as_hex is not None:
            page_ids = as_hex
        if page_ids.dtype.itemsize > ids.dtype.itemsize:
            ids = ids.astype(page_ids.dtype)
        ids[at:end] = page_ids
        texts = [t for p in chunk for t in (p.prompt, p.response_a, p.response_b)]
        rows[at:end] = table.rows_for(texts).reshape(-1, 3)
        k = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)).reshape(-1, 3)
        logs[at:end] = np.log1p(k)
        lengths[at:end] = k[:, 1:]
        sim[at:end] = [_similarity(p) for p in chunk]
        at = end
    model = table.embedder.name
    r, lg, k, sim = rows[:at], logs[:at], lengths[:at], sim[:at]
    return PairColumns(PairIds(ids[:at], packed=packed), TextRows(r[:, 0], lg[:, 0], model),
                       TextRows(r[:, 1], lg[:, 1], model), TextRows(r[:, 2], lg[:, 2], model), k[:, 0], k[:, 1],
                       np.isfinite(sim), sim)


def _similarity(p: PreferencePair) -> float:
    """A REAL candidate's similarity, NaN for any other pair."""
    meta = p.metadata or {}
    sim = meta.get("similarity")
    return float(sim) if meta.get("origin") == "candidates" and isinstance(sim, (int, float)) else np.nan


class LedgerPairs(Sequence[PreferencePair]):
    """The pool's pairs, read from the ledger when asked (by position, in pair-id order)."""

    def __init__(self, ledger: Ledger, ids: Sequence[str]):
        self.ledger, self.ids = ledger, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.ledger.get_pairs(list(self.ids[i]))
        return self.ledger.get_pairs([self.ids[i]])[0]

    def at(self, positions: Sequence[int]) -> list[PreferencePair]:
        """The pairs at ``positions``, in that order (one read)."""
        return self.ledger.get_pairs([self.ids[int(i)] for i in positions])

    def __iter__(self) -> Iterator[PreferencePair]:
        for start in range(0, len(self.ids), PAGE):
            yield from self.ledger.get_pairs(list(self.ids[start:start + PAGE]))


__all__ = ["LedgerPairs", "PAGE", "PairColumns", "read_columns"]

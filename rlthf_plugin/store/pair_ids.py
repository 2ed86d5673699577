"""Pair ids as one numpy array: what a million-pair pool holds instead of a list of strings
and an id -> position dict (~200 bytes a pair; here the id's UTF-8 bytes, 32 for the
ledger's hex ids, and 8 for the sort order when the ids do not come sorted).

:class:`PairIds` is a ``Sequence[str]`` (an item is decoded when asked) whose
:meth:`~PairIds.positions` finds many ids at once by binary search; :class:`PairIndex` is
the id -> position mapping over it (``pool.index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

#: Ids decoded at a time when iterated.
_PAGE = 50_000


def encode_ids(ids: Iterable[str]) -> np.ndarray:
    """(N,) fixed-width bytes array of the ids' UTF-8."""
    out: np.ndarray = np.array([i.encode("utf-8") for i in ids], dtype=np.bytes_)
    return out if out.size else np.zeros(0, dtype="S1")


class PairIds(Sequence[str]):
    """Pair ids, in their order, as a (N,) bytes array (see the module docstring)."""

    def __init__(self, ids: np.ndarray | Iterable[str]):
        data = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "S" else encode_ids(ids)
        self.data: np.ndarray = data
        self._order: np.ndarray | None = None  # argsort when not sorted
        self._sorted = bool(np.all(data[1:] > data[:-1])) if len(data) > 1 else True

    @classmethod
    def concat(cls, pages: Sequence[np.ndarray]) -> PairIds:
        """One :class:`PairIds` of bytes arrays read a page at a time."""
        return cls(np.concatenate(pages) if pages else np.zeros(0, dtype="S1"))

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [b.decode("utf-8") for b in self.data[i]]
        return bytes(self.data[int(i)]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.data), _PAGE):
            yield from (b.decode("utf-8") for b in self.data[start:start + _PAGE])

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self.position(pid) >= 0

    def positions(self, ids: Iterable[str] | np.ndarray) -> np.ndarray:
        """(K,) int64: the position of each of ``ids``, -1 where it is not one of these."""
        want = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "S" else encode_ids(ids)
        if not len(self.data) or not len(want):
            return np.full(len(want), -1, dtype=np.int64)
        if not self._sorted and self._order is None:
            self._order = np.argsort(self.data, kind="stable")
        keys = self.data if self._order is None else self.data[self._order]
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        found = keys[at] == want
        pos = at if self._order is None else self._order[at]
        return np.where(found, pos, -1).astype(np.int64)

    def position(self, pid: str) -> int:
        """The position of one id, -1 when it is not one of these."""
        return int(self.positions([pid])[0])


class PairIndex(Mapping[str, int]):
    """pair id -> its position in a :class:`PairIds` (a dict's reading API over the array)."""

    def __init__(self, ids: PairIds):
        self.ids = ids

    def __getitem__(self, pid: str) -> int:
        i = self.ids.position(pid) if isinstance(pid, str) else -1
        if i < 0:
            raise KeyError(pid)
        return i

    def __contains__(self, pid: object) -> bool:
        return pid in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def positions(self, ids: Iterable[str] | np.ndarray) -> np.ndarray:
        """(K,) int64 positions of ``ids``, -1 where unknown (:meth:`PairIds.positions`)."""
        return self.ids.positions(ids)


def positions_of(index: Mapping[str, int], ids: Sequence[str]) -> np.ndarray:
    """(K,) int64: ``index``'s position of each of ``ids``, -1 where absent; vectorized for a
    :class:`PairIndex`, a lookup per id for a dict."""
    if isinstance(index, PairIndex):
        return index.positions(ids)
    return np.fromiter((index.get(p, -1) for p in ids), dtype=np.int64, count=len(ids))


__all__ = ["PairIds", "PairIndex", "encode_ids", "positions_of"]

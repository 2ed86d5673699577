"""Pair ids as one numpy array: what a million-pair pool holds instead of a list of strings
and an id -> position dict (~200 bytes a pair; here 16 for the ledger's ids, 32 lowercase
hex digits packed two to a byte, else the id's UTF-8 bytes, and 8 for the sort order when
the ids do not come sorted).

Packing keeps the order: the digits 0-9a-f sort as the nibbles they stand for, so packed
ids sort as their text does and a binary search over either finds the same positions.

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
#: The ledger's ids (:func:`rlthf_plugin.pairs.pair_id`): 32 lowercase hex digits, 16 bytes packed.
HEX_DIGITS, PACKED = 32, 16
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def encode_ids(ids: Iterable[str]) -> np.ndarray:
    """(N,) fixed-width bytes array of the ids' UTF-8."""
    out: np.ndarray = np.array([i.encode("utf-8") for i in ids], dtype=np.bytes_)
    return out if out.size else np.zeros(0, dtype="S1")


def _pack_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(packed (N,) ``S16``, ok (N,) bool) of an ``S32`` array: ``ok`` where the id is 32 lowercase hex digits."""
    nib = _NIBBLE[np.ascontiguousarray(ids).view(np.uint8).reshape(-1, HEX_DIGITS)]
    ok = (nib != 255).all(axis=1)  # a shorter id pads with NUL: not a digit either
    packed = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return np.ascontiguousarray(packed).view(f"S{PACKED}").ravel(), ok


def pack_hex(ids: np.ndarray) -> np.ndarray | None:
    """(N,) ``S16``: ids of 32 lowercase hex digits (an ``S`` array), two digits a byte; None
    when any id is another string (then the ids stay as they are)."""
    if ids.dtype != np.dtype(f"S{HEX_DIGITS}"):
        return None if len(ids) else np.zeros(0, dtype=f"S{PACKED}")
    packed, ok = _pack_rows(ids)
    return packed if ok.all() else None


def unpack_hex(packed: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pack_hex`: (N,) ``S32`` hex ids."""
    # tobytes() writes every item's 16 bytes (an S16 item reads without its trailing NUL bytes)
    raw = np.frombuffer(np.asarray(packed, dtype=f"S{PACKED}").tobytes(), dtype=np.uint8).reshape(-1, PACKED)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((len(packed), HEX_DIGITS), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    return out.view(f"S{HEX_DIGITS}").ravel()


class PairIds(Sequence[str]):
    """Pair ids, in their order, as a (N,) bytes array (see the module docstring).

    ``packed``: ``ids`` is already :func:`pack_hex`'s array (the ledger's pages, packed as read)."""

    def __init__(self, ids: np.ndarray | Iterable[str], *, packed: bool = False):
        data = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "S" else encode_ids(ids)
        if not packed:
            as_hex = _pack_pages(data)
            packed, data = (True, as_hex) if as_hex is not None else (False, data)
        self.packed = packed
        self.data: np.ndarray = data
        self._order: np.ndarray | None = None  # argsort when not sorted
        self._sorted = bool(np.all(data[1:] > data[:-1])) if len(data) > 1 else True

    @classmethod
    def concat(cls, pages: Sequence[np.ndarray]) -> PairIds:
        """One :class:`PairIds` of bytes arrays read a page at a time."""
        return cls(np.concatenate(pages) if pages else np.zeros(0, dtype="S1"))

    def _decode(self, b: bytes) -> str:
        return b.ljust(PACKED, b"\0").hex() if self.packed else b.decode("utf-8")

    def _encode(self, ids: Iterable[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``ids`` in :attr:`data`'s form, ok (K,) bool): not ok where an id cannot be one of these."""
        want = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "S" else encode_ids(ids)
        if not self.packed:
            return want, np.ones(len(want), dtype=bool)
        if want.dtype.itemsize != HEX_DIGITS:  # a wider or narrower id is none of 32 digits
            fits = np.char.str_len(want) == HEX_DIGITS
            want = np.where(fits, want, b"").astype(f"S{HEX_DIGITS}")
        else:
            fits = np.ones(len(want), dtype=bool)
        packed, ok = _pack_rows(want)
        return packed, ok & fits

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._decode(b) for b in self.data[i]]
        return self._decode(bytes(self.data[int(i)]))

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.data), _PAGE):
            yield from (self._decode(b) for b in self.data[start:start + _PAGE])

    def text(self) -> np.ndarray:
        """(N,) the ids' UTF-8 bytes (unpacked)."""
        return unpack_hex(self.data) if self.packed else self.data

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self.position(pid) >= 0

    def positions(self, ids: Iterable[str] | np.ndarray) -> np.ndarray:
        """(K,) int64: the position of each of ``ids``, -1 where it is not one of these."""
        want, ok = self._encode(ids)
        if not len(self.data) or not len(want):
            return np.full(len(want), -1, dtype=np.int64)
        if not self._sorted and self._order is None:
            self._order = np.argsort(self.data, kind="stable")
        keys = self.data if self._order is None else self.data[self._order]
        at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        found = (keys[at] == want) & ok
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


def _pack_pages(data: np.ndarray) -> np.ndarray | None:
    """:func:`pack_hex` a page at a time (its temporaries are 32 bytes an id): None when any
    page holds an id that is not 32 hex digits."""
    if data.dtype != np.dtype(f"S{HEX_DIGITS}"):
        return None
    out = np.zeros(len(data), dtype=f"S{PACKED}")
    for start in range(0, len(data), _PAGE):
        page = pack_hex(data[start:start + _PAGE])
        if page is None:
            return None
        out[start:start + len(page)] = page
    return out


def positions_of(index: Mapping[str, int], ids: Sequence[str]) -> np.ndarray:
    """(K,) int64: ``index``'s position of each of ``ids``, -1 where absent; vectorized for a
    :class:`PairIndex`, a lookup per id for a dict."""
    if isinstance(index, PairIndex):
        return index.positions(ids)
    return np.fromiter((index.get(p, -1) for p in ids), dtype=np.int64, count=len(ids))


__all__ = ["PairIds", "PairIndex", "encode_ids", "pack_hex", "positions_of", "unpack_hex"]

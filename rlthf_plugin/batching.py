"""The one chunking helper: any iterable in consecutive lists of at most ``size`` items.

Shared by the ledger (long IN-lists, executemany batches), the adapters (bulk calls to a
platform) and the importer (rows written per chunk).
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` (any iterable, read once) in consecutive lists of at most ``size``: one
    batch is held at a time; nothing is yielded for no items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch

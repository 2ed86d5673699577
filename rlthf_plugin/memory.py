"""How the process hands freed arrays back to the operating system.

glibc serves an allocation from the heap below a threshold and maps it on its own above;
by default the threshold rises to the size of each mapped block freed (up to 32 MB). After
a ``select`` at a million pairs frees its first 8 MB arrays, every later array of a few MB
lands in the heap, and the heap gives memory back only from its top: freed arrays below a
live one stay resident. Which ones do depends on the order of frees in the process's
threads, so the peak varied run to run (measured at 1M pairs: 394 or 423 MB for the same
run; docs/benchmarks.md, issue 22, run 6).

:func:`map_large_arrays` pins the threshold (``mallopt(M_MMAP_THRESHOLD)``): an array of
1 MiB or more is its own mapping, returned when freed, so the resident set follows the
arrays alive (370 MB, every run). It costs a page fault per page of each such array, mapped
anew each time (the reward model's per-batch arrays among them): ~18% of ``select``'s time
at 200k pairs (13 s against 11 s). The CLI's ``--mmap-threshold``
(``RLTHF_MMAP_THRESHOLD``) sets another threshold in bytes, ``0`` keeps glibc's own; a threshold the environment gives glibc
(``MALLOC_MMAP_THRESHOLD_``, ``GLIBC_TUNABLES``) is kept. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``mallopt`` parameter number of the mapping threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: Arrays at least this large are mapped on their own.
THRESHOLD = 1 << 20


def map_large_arrays(threshold: int = THRESHOLD) -> bool:
    """Pin glibc's mapping threshold at ``threshold`` bytes (0: leave glibc's own); True where
    it took effect. A threshold set in the environment for glibc (``MALLOC_MMAP_THRESHOLD_``,
    ``GLIBC_TUNABLES``) is kept."""
    if threshold <= 0 or not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


__all__ = ["M_MMAP_THRESHOLD", "THRESHOLD", "map_large_arrays"]

"""The workspace's vector store: one memory-mapped float32 matrix per embedder, by text id.

Each embedder (its cache ``name``) has a folder under ``<workspace>/vectors/`` with

- ``vectors.f32``: the rows, ``(rows, dim)`` float32, row after row, appended;
- ``keys.bin``: the text id of each row (:func:`~rlthf_plugin.pairs.text_hash`, 32 hex
  digits stored as its 16 bytes), in the same order;
- ``manifest.json``: ``{"rows": R, "dim": d, ...}``, the rows that count.

An append (:meth:`VectorFiles.save_vectors`) takes the folder's lock (``flock``, so several
processes, e.g. the ranks of a sharded ``rlthf embed``, append to one store without
clashing), cuts both files back to the manifest's rows (what a killed writer left past them),
writes and syncs the new rows, and only then replaces the manifest (written beside it,
synced, renamed: atomic). A reader maps the manifest's rows only, so a writer killed at any
point leaves the store readable, without the rows it did not finish; the next run embeds
those again.

The ledger holds the ids, the store the vectors: this works the same with a PostgreSQL
ledger. Vectors cached in the ledger's ``embeddings`` table (SQLite or PostgreSQL, the
store before this one) are moved into the files the first time their embedder is used
(:meth:`VectorFiles.open_model`), then deleted from the table.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from . import embeddings as embeddings_db

if TYPE_CHECKING:
    from .ledger import Ledger

#: Bytes of a text id as stored (the 32 hex digits of :func:`~rlthf_plugin.pairs.text_hash`).
KEY_BYTES = 16
KEY_DTYPE = np.dtype(f"S{KEY_BYTES}")
FORMAT = 1


def keys_of(hashes: Sequence[str]) -> np.ndarray:
    """(N,) ``S16`` keys of 32-hex-digit text hashes."""
    if not len(hashes):
        return np.zeros(0, dtype=KEY_DTYPE)
    try:
        raw = bytes.fromhex("".join(hashes))
    except ValueError as e:
        raise ValueError(f"text ids must be 32 hex digits: {e}") from None
    if len(raw) != KEY_BYTES * len(hashes):
        raise ValueError("text ids must be 32 hex digits each")
    return np.frombuffer(raw, dtype=KEY_DTYPE)


def folder_name(model: str) -> str:
    """A file-system-safe folder name for an embedder's cache name (readable and unique)."""
    import hashlib

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:80]
    return f"{slug}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


class ModelVectors:
    """One embedder's rows: the mapped matrix, the keys and a sorted index of the keys."""

    def __init__(self, folder: Path, model: str):
        self.folder, self.model = folder, model
        self.rows, self.dim = 0, 0
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._sorted: np.ndarray = np.zeros(0, dtype=KEY_DTYPE)
        self._indexed = True  # False after forget_index(): rebuilt by the next rows_of
        self._file: int | None = None
        self.refresh()

    # -- reading ------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        path = self.folder / "manifest.json"
        if not path.exists():
            return {"rows": 0, "dim": 0}
        content: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return content

    def refresh(self) -> None:
        """Map the rows the manifest counts (after another process appended): the keys added
        since are read and merged into the sorted index, the others are kept."""
        m = self.manifest()
        rows, dim = int(m["rows"]), int(m["dim"])
        if rows == self.rows and dim == self.dim:
            return
        if not self._indexed:  # no index in memory: rows_of builds it for the rows then mapped
            pass
        elif rows > self.rows > 0 and dim == self.dim:  # appended: keys.bin only grows below the manifest
            self._merge(np.fromfile(self.folder / "keys.bin", dtype=KEY_DTYPE, count=rows - self.rows,
                                    offset=self.rows * KEY_BYTES), self.rows)
        elif rows:
            self._load_index(rows)
        else:
            self._order, self._sorted = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=KEY_DTYPE)
        self.rows, self.dim = rows, dim
        self.matrix = (np.memmap(self.folder / "vectors.f32", dtype=np.float32, mode="r", shape=(rows, dim))
                       if rows else np.zeros((0, dim), dtype=np.float32))
        mm = getattr(self.matrix, "_mmap", None)
        if mm is not None and hasattr(mmap, "MADV_RANDOM"):
            # Rows are gathered, not scanned: without this, each fault maps its neighbours too
            # (fault-around, readahead), and a batch of rows spread over the store maps many MB.
            mm.madvise(mmap.MADV_RANDOM)

    def _load_index(self, rows: int) -> None:
        keys = np.fromfile(self.folder / "keys.bin", dtype=KEY_DTYPE, count=rows)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        self._indexed = True

    def forget_index(self) -> None:
        """Drop the sorted index of the keys from memory (24 bytes a row); the next
        :meth:`rows_of` reads it again. A select drops it once its pool holds the rows."""
        self._order, self._sorted = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=KEY_DTYPE)
        self._indexed = False

    def _merge(self, keys: np.ndarray, first_row: int) -> None:
        """Insert ``keys`` (rows ``first_row``, ``first_row + 1``, ...) into the sorted index."""
        order = np.argsort(keys, kind="stable")
        pos = np.searchsorted(self._sorted, keys[order])
        self._sorted = np.insert(self._sorted, pos, keys[order])
        self._order = np.insert(self._order, pos, first_row + order)

    def keys(self) -> np.ndarray:
        """(rows,) ``S16`` text id of each row, in row order."""
        return np.fromfile(self.folder / "keys.bin", dtype=KEY_DTYPE, count=self.rows) if self.rows else \
            np.zeros(0, dtype=KEY_DTYPE)

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """(N,) int64 row of each key (``S16``), -1 where the store lacks it."""
        if not self.rows or not len(keys):
            return np.full(len(keys), -1, dtype=np.int64)
        if not self._indexed:
            self._load_index(self.rows)
        pos = np.minimum(np.searchsorted(self._sorted, keys), self.rows - 1)
        return np.where(self._sorted[pos] == keys, self._order[pos], -1).astype(np.int64)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """(N, d) float32 copy of ``rows``, read with ``preadv`` (one read per run of
        consecutive rows), not through the mapping: on kernels whose page cache holds large
        folios a mapped read maps the whole folio (up to 2 MB for one 1.5 KB row), so
        gathering rows spread over the store would map most of it; a read keeps RSS at the
        rows asked for."""
        rows = np.asarray(rows, dtype=np.int64)
        out_dim = self.dim
        if rows.size == 0:
            return np.zeros((0, out_dim), dtype=np.float32)
        if rows.min() < 0 or rows.max() >= self.rows:
            raise IndexError(f"row out of range [0, {self.rows})")
        unique, inverse = np.unique(rows, return_inverse=True)
        buf = np.empty((unique.size, out_dim), dtype=np.float32)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        row_bytes = out_dim * 4
        fd = self._fd()
        for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [unique.size]])):
            view = memoryview(buf[a:b]).cast("B")  # type: ignore[arg-type]  # an ndarray is a buffer
            got = os.preadv(fd, [view], int(unique[a]) * row_bytes)
            if got != view.nbytes:
                raise OSError(f"{self.folder / 'vectors.f32'}: short read ({got} of {view.nbytes} bytes)")
        out: np.ndarray = buf[inverse.reshape(-1)]
        return out

    def _fd(self) -> int:
        """A read-only descriptor of ``vectors.f32`` (opened once; the file only grows)."""
        if self._file is None:
            self._file = os.open(self.folder / "vectors.f32", os.O_RDONLY)
        return self._file

    def release(self) -> None:
        """Drop the mapped pages from this process's resident memory (the page cache keeps
        them): a scan over every row stays within its chunk's memory."""
        mm = getattr(self.matrix, "_mmap", None)
        if mm is not None and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED)

    # -- appending ----------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The folder's append lock (exclusive, across processes)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def append(self, keys: np.ndarray, vectors: np.ndarray, **manifest: object) -> int:
        """Append the rows whose keys the store lacks (first of duplicates); returns how many.

        Atomic: see the module docstring. ``manifest`` adds fields to the manifest.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"vectors {vectors.shape} must be (N, d) with N = {len(keys)} keys")
        with self.locked():
            self.refresh()  # another process may have appended since
            if self.rows and vectors.shape[1] != self.dim:
                raise ValueError(f"{self.model}: vectors of dimension {vectors.shape[1]}, the store holds {self.dim}")
            _, first = np.unique(keys, return_index=True)
            new = np.sort(first[self.rows_of(keys[first]) < 0])
            if new.size == 0 and (self.folder / "manifest.json").exists():
                return 0
            dim = vectors.shape[1]
            data, key_file = self.folder / "vectors.f32", self.folder / "keys.bin"
            for path, size in ((data, self.rows * self.dim * 4), (key_file, self.rows * KEY_BYTES)):
                with open(path, "ab") as f:
                    f.truncate(size)  # what a killed writer left past the manifest
                    f.write(vectors[new].tobytes() if path is data else keys[new].tobytes())
                    f.flush()
                    os.fsync(f.fileno())
            self._write_manifest({**self.manifest(), **manifest, "model": self.model, "format": FORMAT,
                                  "rows": self.rows + int(new.size), "dim": dim})
            self.refresh()
            return int(new.size)

    def _write_manifest(self, content: dict) -> None:
        tmp = self.folder / f"manifest.json.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(content, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / "manifest.json")
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class VectorFiles:
    """The vector store of a workspace (see the module docstring); a ``VectorStore``.

    ``ledger`` (optional) is where older vectors may still be cached; they are moved into the
    files on the first use of their embedder.
    """

    def __init__(self, root: str | os.PathLike, ledger: "Ledger | None" = None):
        self.root = Path(root)
        self.ledger = ledger
        self._models: dict[str, ModelVectors] = {}

    def open_model(self, model: str) -> ModelVectors:
        """The rows of ``model`` (mapped once per process, migrated from the ledger first)."""
        mv = self._models.get(model)
        if mv is None:
            mv = ModelVectors(self.root / folder_name(model), model)
            if self.ledger is not None:
                self._migrate(mv, self.ledger)
            self._models[model] = mv
        else:
            mv.refresh()
        return mv

    def _migrate(self, mv: ModelVectors, ledger: Ledger) -> None:
        """Move ``mv.model``'s vectors from the ledger's table into the files, a page at a time."""
        if not embeddings_db.has_vectors(ledger, mv.model):
            return
        for hashes, vectors in embeddings_db.iter_vector_pages(ledger, mv.model):
            mv.append(keys_of(hashes), vectors, migrated_from_ledger=True)
        embeddings_db.delete_vectors(ledger, mv.model)

    # -- the VectorStore protocol ---------------------------------------------------------
    def load_vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """text hash -> (d,) float32 vector, for the hashes stored under ``model``."""
        mv = self.open_model(model)
        rows = mv.rows_of(keys_of(hashes))
        return {h: np.array(mv.matrix[r]) for h, r in zip(hashes, rows) if r >= 0}

    def save_vectors(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (N, d) under ``model`` and ``hashes`` (N,); existing keys are kept."""
        self.open_model(model).append(keys_of(hashes), vectors)

    # -- read as one array ----------------------------------------------------------------
    def rows_of(self, model: str, hashes: Sequence[str]) -> np.ndarray:
        """(N,) int64 row of each text hash in :meth:`matrix`, -1 where not stored."""
        return self.open_model(model).rows_of(keys_of(hashes))

    def matrix(self, model: str) -> np.ndarray:
        """``(rows, d)`` float32, memory-mapped read-only: every vector stored under ``model``."""
        return self.open_model(model).matrix

    def gather(self, model: str, rows: np.ndarray) -> np.ndarray:
        """(N, d) float32 copy of ``model``'s ``rows``, read without mapping (see :meth:`ModelVectors.gather`)."""
        return self.open_model(model).gather(rows)

    def release(self, model: str) -> None:
        """Drop ``model``'s mapped pages from resident memory (see :meth:`ModelVectors.release`)."""
        if model in self._models:
            self._models[model].release()

    def forget_index(self, model: str) -> None:
        """Drop ``model``'s key index from memory until rows are looked up again
        (:meth:`ModelVectors.forget_index`)."""
        if model in self._models:
            self._models[model].forget_index()


__all__ = ["KEY_BYTES", "ModelVectors", "VectorFiles", "folder_name", "keys_of"]

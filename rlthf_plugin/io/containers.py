"""Containers of preference records: JSON / JSON lines files (plain, .gz, .zip), folders,
Hugging Face datasets saved to disk, and ``hf://`` hub datasets.

Each yields ``(name, line, record)``; the row formats (:mod:`.formats`) read the records.
"""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputProblem, RlthfError


HF_PREFIX = "hf://"


def _json_records(data: bytes, name: str, problems: list[InputProblem]) -> Iterator[tuple[int, Any]]:
    """A JSON array (items numbered from 1) or JSON lines (lines numbered from 1)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        problems.append(InputProblem(name, line, None, f"not valid UTF-8 (byte {e.start})"))
        return
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(InputProblem(name, e.lineno, None, f"invalid JSON: {e.msg}"))
            return
        for i, item in enumerate(items, start=1):
            yield i, item
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(InputProblem(name, i, None, f"invalid JSON: {e.msg}"))


def read_records(path: str, problems: list[InputProblem]) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(name, line, record)`` from a file, folder or ``hf://`` dataset.

    Problems that make a record unreadable (invalid JSON, bad bytes) are appended to
    ``problems`` instead of raising, so one run reports every bad line.
    """
    if path.startswith(HF_PREFIX):
        yield from _hub_records(path)
        return
    p = Path(path)
    if not p.exists():
        raise RlthfError(f"{path}: no such file or folder")
    if p.is_dir():
        yield from _dataset_records(p)
        return
    name = str(p)
    lower = p.name.lower()
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            batches = pq.ParquetFile(p).iter_batches(batch_size=4096)  # streamed: memory is one batch
        except Exception as e:  # pyarrow raises many types for a corrupt file
            raise RlthfError(f"{path}: not a readable parquet file ({e})") from e
        i = 0
        for batch in batches:
            for record in batch.to_pylist():
                i += 1
                yield name, i, record
        return
    if lower.endswith(".zip"):
        with zipfile.ZipFile(p) as z:
            members = [m for m in z.namelist()
                       if not m.startswith("__MACOSX/") and m.lower().endswith((".json", ".jsonl"))]
            for member in members:
                for line, record in _json_records(z.read(member), f"{name}!{member}", problems):
                    yield f"{name}!{member}", line, record
        return
    gz = lower.endswith(".gz")
    try:
        yield from ((name, line, record) for line, record in _stream_json(p, name, problems, gz=gz))
    except (OSError, EOFError) as e:
        if not gz:
            raise
        raise RlthfError(f"{path}: not a readable gzip file ({e})") from e


def _stream_json(p: Path, name: str, problems: list[InputProblem], *, gz: bool) -> Iterator[tuple[int, Any]]:
    """JSON lines read one line at a time (memory: one line); a JSON array is parsed whole."""
    seen = False
    with (gzip.open(p, "rb") if gz else p.open("rb")) as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            if not seen and raw.lstrip().startswith(b"["):  # a JSON array: blank lines keep the numbering
                yield from _json_records(b"\n" * (i - 1) + raw + fh.read(), name, problems)
                return
            seen = True
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(InputProblem(name, i, None, f"not valid UTF-8 (byte {e.start} of the line)"))
                continue
            try:
                yield i, json.loads(text)
            except json.JSONDecodeError as e:
                problems.append(InputProblem(name, i, None, f"invalid JSON: {e.msg}"))
    if not seen:
        problems.append(InputProblem(name, None, None, "the file is empty"))


def _dataset_records(folder: Path) -> Iterator[tuple[str, int, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(folder))
    except FileNotFoundError as e:
        raise RlthfError(f"{folder}: not a dataset saved with save_to_disk ({e})") from e
    if isinstance(ds, datasets.DatasetDict):
        for split, part in ds.items():
            for i, record in enumerate(part, start=1):
                yield f"{folder}[{split}]", i, record
    else:
        for i, record in enumerate(ds, start=1):
            yield str(folder), i, record


def _hub_records(path: str) -> Iterator[tuple[str, int, Any]]:
    name, _, split = path[len(HF_PREFIX):].partition(":")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise RlthfError(f"{path}: HF_HUB_OFFLINE is set, so the hub dataset '{name}' cannot be downloaded; "
                         "save it with datasets' save_to_disk on a connected machine and import the folder")
    import datasets
    import socket

    try:  # fail fast offline instead of after a minute of retries
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError as e:
        raise RlthfError(f"{path}: the Hugging Face hub is unreachable ({e}); "
                         "import a local copy (save_to_disk folder, parquet or jsonl) instead") from e
    ds = datasets.load_dataset(name, split=split or "train")
    for i, record in enumerate(ds, start=1):
        yield path, i, record

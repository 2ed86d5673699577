"""Import preference data into the ledger: validate every row, write in chunks in one transaction."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from ..batching import batched
from ..errors import InputProblem, InvalidInputError, RlthfError
from ..pairs import pair_id, prompt_id, response_id, swap_label
from ..store.ledger import Ledger, now
from ..store.pairs import ImportState, ImportWriter, import_transaction
from .containers import read_records
from .formats import ROW_FORMATS, Row, RowError, detect_format


@dataclass
class ImportReport:
    """What an import did. ``skipped`` lists the invalid rows left out (``--skip-invalid``)."""

    rows: int = 0
    new_pairs: int = 0
    new_responses: int = 0
    new_ai_labels: int = 0
    new_human_labels: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    skipped: list[InputProblem] = field(default_factory=list)


#: Rows parsed, planned and inserted at a time: memory holds one chunk, not the file.
CHUNK = 5000


def iter_rows(paths: Iterable[str], problems: list[InputProblem], formats: dict[str, int], *, fmt: str | None = None,
              judge: str = "import", label_source: str = "human", progress: bool = False) -> Iterator[Row]:
    """Read and validate every record, yielding the valid rows one at a time; each invalid
    one is appended to ``problems`` and each valid one counted in ``formats`` (by format)."""
    if fmt is not None and fmt not in ROW_FORMATS:
        raise RlthfError(f"unknown format '{fmt}'; known: {', '.join(ROW_FORMATS)}")
    for path in paths:
        seen_any = False
        for name, line, record in tqdm(read_records(path, problems), desc=f"importing {path}",
                                       unit=" rows", disable=not progress, leave=False):
            seen_any = True
            if not isinstance(record, dict):
                problems.append(InputProblem(name, line, None, f"expected a JSON object, got {type(record).__name__}"))
                continue
            kind = fmt or detect_format(record)
            if kind is None:
                problems.append(InputProblem(name, line, None,
                                             f"unknown row format (fields: {', '.join(sorted(record)[:8])}); "
                                             f"use --format, one of {', '.join(ROW_FORMATS)}"))
                continue
            kwargs = {"source": _source_name(path), "judge": judge}
            if kind in ("trl", "hh"):
                kwargs["label_source"] = label_source
            try:
                row = ROW_FORMATS[kind](record, **kwargs)
            except RowError as e:
                problems.append(InputProblem(name, line, e.field, str(e)))
                continue
            row.file, row.line = name, line
            formats[kind] = formats.get(kind, 0) + 1
            yield row
        if not seen_any and not any(p.file.startswith(str(path)) for p in problems):
            problems.append(InputProblem(str(path), None, None, "no records"))


def _source_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".")[0] or path


def import_files(ledger: Ledger, paths: Iterable[str], *, fmt: str | None = None, skip_invalid: bool = False,
                 judge: str = "import", label_source: str = "human", progress: bool = False,
                 chunk: int = CHUNK) -> ImportReport:
    """Validate and import files; all or nothing unless ``skip_invalid``.

    The input is streamed in chunks of ``chunk`` rows inside one transaction, so memory
    stays bounded by a chunk whatever the file size. After the first invalid row nothing
    more is written, but reading goes on so that every problem is reported; the
    transaction is then rolled back. A judge row whose pair comes later in the import is
    held back (judge rows are small) and written at the end.

    Raises
    ------
    InvalidInputError
        When a row is invalid and ``skip_invalid`` is False. The ledger is unchanged.
    """
    problems: list[InputProblem] = []
    report = ImportReport()
    stamp = now()
    rows = iter_rows(paths, problems, report.formats, fmt=fmt, judge=judge, label_source=label_source,
                     progress=progress)
    with _without_cyclic_gc(), import_transaction(ledger) as tx:
        waiting: list[Row] = []  # judge rows whose pair is not in the ledger or the import yet
        # Pairs that got human votes from a pair-level row of this import: a row repeating
        # the pair for another judge carries the same votes again and adds none.
        human_pairs: set[str] = set()
        for part in batched(rows, chunk):
            report.rows += len(part)
            if problems and not skip_invalid:
                continue  # keep reading to report every problem; nothing more is written
            waiting += _write_chunk(tx, part, stamp, human_pairs)
        for part in batched(waiting, chunk):
            for r in _write_chunk(tx, part, stamp, human_pairs):
                problems.append(InputProblem(r.file, r.line, "idx",
                                             f"no imported pair for '{r.ref_key}': import the pairs first"))
                report.rows -= 1
        if problems and not skip_invalid:
            raise InvalidInputError(problems, hint="fix these rows, or pass --skip-invalid to import the others")
        added = tx.added()
    report.skipped = problems
    report.new_pairs = added["pairs"]
    report.new_responses = added["responses"]
    report.new_ai_labels = added["ai_labels"]
    report.new_human_labels = added["human_labels"]
    return report


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector, then restore its state. The rows are dicts, lists
    and tuples without cycles, freed by reference counting; the collector's passes over
    each chunk's new containers took a tenth of a 300k-pair import (py-spy)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write_chunk(tx: ImportWriter, rows: list[Row], stamp, human_pairs: set[str]) -> list[Row]:
    """Plan and insert one chunk (pairs before the judge rows that label them); returns the
    judge rows whose pair is not known yet."""
    pids = [pair_id(r.prompt, r.response_a, r.response_b) if r.ref_key is None and r.response_a is not None else None
            for r in rows]  # hashed once a row: the state query and the plan both need them
    refs = [r.ref_key for r in rows if r.ref_key is not None]
    state = tx.state([pid for pid in pids if pid is not None], refs)
    here = {r.source_key for r, pid in zip(rows, pids) if pid is not None}
    ready: list[tuple[Row, str | None]] = []
    unknown: list[Row] = []
    for r, pid in zip(rows, pids):
        if r.ref_key is not None and r.ref_key not in state.source_pairs and r.ref_key not in here:
            unknown.append(r)
        else:
            ready.append((r, pid))
    ready.sort(key=lambda rp: rp[0].ref_key is not None)  # stable: pairs first, then their judge rows
    tx.write(_plan(ready, state, stamp, human_pairs))
    return unknown


#: A vote's order in the pair's own terms when the row had the responses swapped.
_SWAPPED_ORDER = {"ab": "ba", "ba": "ab"}


def _plan(rows: list[tuple[Row, str | None]], state: ImportState, stamp,
          human_pairs: set[str]) -> dict[str, list[dict]]:
    """The rows to insert per table for ``rows`` (each with its pair id, None for judge and
    multi-response rows; pairs first), given what is known and the pairs whose pair-level
    human votes this import already holds (updated in place)."""
    known, source_pairs, source_swapped = state.known, state.source_pairs, state.source_swapped
    new_pairs, new_sources, resp, ai, human = [], [], {}, [], []
    prompt_ids: dict[str, str] = {}  # a prompt's id, hashed once a chunk
    for r, pid in rows:
        if (pmt := prompt_ids.get(r.prompt)) is None:
            pmt = prompt_ids[r.prompt] = prompt_id(r.prompt)
        if r.ref_key is not None:  # a judge file: labels for a pair imported before
            pid = source_pairs[r.ref_key]
            swapped = source_swapped.get(r.ref_key, False)
        elif pid is not None:
            if pid not in known:
                known[pid] = r.response_a
                new_pairs.append({
                    "id": pid, "prompt_id": pmt, "prompt": r.prompt,
                    "response_a": r.response_a, "response_b": r.response_b, "source": r.source,
                    "metadata": r.metadata, "origin": "import", "created_at": stamp,
                })
            swapped = known[pid] != r.response_a
            new_sources.append({"source_key": r.source_key, "pair_id": pid, "swapped": swapped,
                                "metadata": r.metadata})
            source_pairs.setdefault(r.source_key, pid)
            source_swapped.setdefault(r.source_key, swapped)
            for text, model in ((r.response_a, r.models[0]), (r.response_b, r.models[1])):
                resp.setdefault(response_id(r.prompt, text), (pmt, r.prompt, text, model))
        else:  # multi-response: responses only, pairs come from `rlthf candidates`
            for text, model in r.responses:
                resp.setdefault(response_id(r.prompt, text), (pmt, r.prompt, text, model))
            continue
        # Stored in the pair's own A/B terms: a swapped row swaps labels and orders.
        for v in r.ai_labels:
            label, confidence, order = v.label, v.confidence, v.order
            if swapped:
                label, order = swap_label(label), _SWAPPED_ORDER.get(order, order)
                confidence = None if confidence is None else 1 - confidence
            ai.append({"pair_id": pid, "judge": v.judge, "label": label, "confidence": confidence,
                       "prompt_version": "", "order": order, "source_key": v.key, "raw": None, "created_at": stamp})
        if r.pair_level_humans and r.human_votes:
            if pid in human_pairs:  # the same pair's votes again, from a row for another judge
                continue
            human_pairs.add(pid)
        human += [{"pair_id": pid, "label": swap_label(lab) if swapped else lab, "annotator": who,
                   "platform": "import", "external_id": key, "comment": None, "iteration": None, "deleted": False,
                   "labeled_at": stamp, "stored_at": stamp} for who, lab, key in r.human_votes]
    responses = [{"id": rid, "prompt_id": pmt, "prompt": p, "text": t, "model": m, "created_at": stamp}
                 for rid, (pmt, p, t, m) in resp.items()]
    return {"pairs": new_pairs, "pair_sources": new_sources, "responses": responses, "ai_labels": ai,
            "human_labels": human}

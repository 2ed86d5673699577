"""Import preference data into the ledger: validate every row, then write in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from tqdm.auto import tqdm

from ..errors import InputProblem, InvalidInputError, RlthfError
from ..pairs import pair_id, prompt_id, response_id, swap_label
from ..store.ledger import Ledger, now
from ..store.pairs import ImportState, source_keys, write_import
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


def parse_files(paths: Iterable[str], *, fmt: str | None = None, judge: str = "import",
                label_source: str = "human", progress: bool = False) -> tuple[list[Row], list[InputProblem], dict[str, int]]:
    """Read and validate every record; returns (rows, problems, count per format)."""
    if fmt is not None and fmt not in ROW_FORMATS:
        raise RlthfError(f"unknown format '{fmt}'; known: {', '.join(ROW_FORMATS)}")
    rows: list[Row] = []
    problems: list[InputProblem] = []
    formats: dict[str, int] = {}
    for path in paths:
        seen_any = False
        for name, line, record in tqdm(read_records(path, problems), desc=f"reading {path}",
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
                row.file, row.line = name, line
                rows.append(row)
            except RowError as e:
                problems.append(InputProblem(name, line, e.field, str(e)))
                continue
            formats[kind] = formats.get(kind, 0) + 1
        if not seen_any and not any(p.file.startswith(str(path)) for p in problems):
            problems.append(InputProblem(str(path), None, None, "no records"))
    return rows, problems, formats


def _source_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".")[0] or path


def import_files(ledger: Ledger, paths: Iterable[str], *, fmt: str | None = None, skip_invalid: bool = False,
                 judge: str = "import", label_source: str = "human", progress: bool = False) -> ImportReport:
    """Validate and import files; all or nothing unless ``skip_invalid``.

    Raises
    ------
    InvalidInputError
        When a row is invalid and ``skip_invalid`` is False. The ledger is unchanged.
    """
    rows, problems, formats = parse_files(paths, fmt=fmt, judge=judge, label_source=label_source, progress=progress)
    missing = _missing_refs(ledger, rows)
    problems += [InputProblem(r.file, r.line, "idx", f"no imported pair for '{r.ref_key}': import the pairs first")
                 for r in rows if r.ref_key in missing]
    if problems and not skip_invalid:
        raise InvalidInputError(problems, hint="fix these rows, or pass --skip-invalid to import the others")
    rows = [r for r in rows if r.ref_key not in missing]
    # Pairs before the judge rows that label them.
    rows.sort(key=lambda r: r.ref_key is not None)
    report = ImportReport(rows=len(rows), formats=formats, skipped=problems)
    _write(ledger, rows, report)
    return report


def _missing_refs(ledger: Ledger, rows: list[Row]) -> set[str]:
    """Keys of judge rows whose pair is neither in the ledger nor in this import."""
    refs = {r.ref_key for r in rows if r.ref_key}
    if not refs:
        return set()
    here = {r.source_key for r in rows if r.ref_key is None}
    return refs - here - source_keys(ledger)


def _write(ledger: Ledger, rows: list[Row], report: ImportReport) -> None:
    stamp = now()

    def plan(state: ImportState) -> dict[str, list[dict]]:
        known, source_pairs, source_swapped = state.known, state.source_pairs, state.source_swapped
        new_pairs, new_sources, resp, ai, human = [], [], {}, [], []
        # Pairs that got human votes from a pair-level row of this import: a row repeating
        # the pair for another judge carries the same votes again and adds none.
        human_pairs: set[str] = set()
        for r in rows:
            if r.ref_key is not None:  # a judge file: labels for a pair imported before
                pid = source_pairs[r.ref_key]
                swapped = source_swapped.get(r.ref_key, False)
            elif r.response_a is not None:
                pid = pair_id(r.prompt, r.response_a, r.response_b)
                if pid not in known:
                    known[pid] = r.response_a
                    new_pairs.append({
                        "id": pid, "prompt_id": prompt_id(r.prompt), "prompt": r.prompt,
                        "response_a": r.response_a, "response_b": r.response_b, "source": r.source,
                        "metadata": r.metadata, "origin": "import", "created_at": stamp,
                    })
                swapped = known[pid] != r.response_a
                new_sources.append({"source_key": r.source_key, "pair_id": pid, "swapped": swapped,
                                    "metadata": r.metadata})
                source_pairs.setdefault(r.source_key, pid)
                source_swapped.setdefault(r.source_key, swapped)
                for text, model in ((r.response_a, r.models[0]), (r.response_b, r.models[1])):
                    resp.setdefault(response_id(r.prompt, text), (r.prompt, text, model))
            else:  # multi-response: responses only, pairs come from `rlthf candidates`
                for text, model in r.responses:
                    resp.setdefault(response_id(r.prompt, text), (r.prompt, text, model))
                continue
            fix = swap_label if swapped else (lambda x: x)
            # Stored in the pair's own A/B terms: a swapped row swaps labels and orders.
            ai += [{"pair_id": pid, "judge": v.judge, "label": fix(v.label),
                    "confidence": None if v.confidence is None else (1 - v.confidence if swapped else v.confidence),
                    "prompt_version": "", "order": {"ab": "ba", "ba": "ab"}.get(v.order, v.order) if swapped else v.order,
                    "source_key": v.key, "raw": None, "created_at": stamp} for v in r.ai_labels]
            if r.pair_level_humans and r.human_votes:
                if pid in human_pairs:  # the same pair's votes again, from a row for another judge
                    continue
                human_pairs.add(pid)
            human += [{"pair_id": pid, "label": fix(lab), "annotator": who, "platform": "import",
                       "external_id": key, "comment": None, "iteration": None, "deleted": False,
                       "labeled_at": stamp, "stored_at": stamp} for who, lab, key in r.human_votes]
        responses = [{"id": rid, "prompt_id": prompt_id(p), "prompt": p, "text": t, "model": m, "created_at": stamp}
                     for rid, (p, t, m) in resp.items()]
        return {"pairs": new_pairs, "pair_sources": new_sources, "responses": responses, "ai_labels": ai,
                "human_labels": human}

    added = write_import(ledger, plan)
    report.new_pairs = added["pairs"]
    report.new_responses = added["responses"]
    report.new_ai_labels = added["ai_labels"]
    report.new_human_labels = added["human_labels"]

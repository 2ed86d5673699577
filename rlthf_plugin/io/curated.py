"""The curated export as training data: read, check, split, amplify, describe.

The contract (written by ``rlthf export``, ``rlthf_plugin.io.export.curated_rows``): one JSON
object per pair with ``pair_id``, ``prompt``, ``chosen``, ``rejected``, ``label_source``
(one of :data:`LABEL_SOURCES`), ``iteration`` and ``amplification`` (int >= 1: the row is
repeated that many times in training). The eval split is drawn by pair before
amplification, so no copy of an eval pair is trained on.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputProblem, InvalidInputError, RlthfError
from ..vocab import LABEL_SOURCES, LabelSource

#: Version of the row schema below; a row naming another version is refused.
SCHEMA_VERSION = 1
REQUIRED = ("pair_id", "prompt", "chosen", "rejected", "label_source", "iteration", "amplification")
#: Optional fields, which training ignores: ``reason``, the latest selection's machine reason
#: for the pair (an object, or null when it was not a candidate); ``label_judge``, the judge
#: whose AI label the row's label was audited from (a string; null on ``human`` rows).
OPTIONAL = ("reason", "label_judge")
#: Every field of a row: ``schema_version`` (optional when reading), the required ones, the optional ones.
FIELDS = ("schema_version", *REQUIRED, *OPTIONAL)


@dataclass(frozen=True)
class CuratedSet:
    """Rows of the curated export, columns as lists of one length (N,)."""

    pair_id: list[str]
    prompt: list[str]
    chosen: list[str]
    rejected: list[str]
    label_source: list[str]
    iteration: list[int | None]
    amplification: list[int]

    def __len__(self) -> int:
        return len(self.pair_id)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], *, where: str = "rows") -> "CuratedSet":
        """Check every row against the contract; :class:`InvalidInputError` lists each bad one."""
        cols: dict[str, list] = {k: [] for k in REQUIRED}
        problems: list[InputProblem] = []
        for line, row in enumerate(rows, 1):
            bad = _check_row(row, where, line)
            if bad:
                problems.extend(bad)
                continue
            for k in REQUIRED:
                cols[k].append(_value(row, k))
        if problems:
            raise InvalidInputError(problems, hint="expected the curated export of `rlthf export` "
                                                   f"(keys {', '.join(REQUIRED)})")
        return cls(**cols)

    def subset(self, idx: Sequence[int]) -> "CuratedSet":
        return CuratedSet(**{k: [getattr(self, k)[i] for i in idx] for k in REQUIRED})

    def only(self, sources: Sequence[str] | None) -> "CuratedSet":
        """The rows whose ``label_source`` is in ``sources`` (None = all)."""
        if not sources:
            return self
        unknown = sorted(set(sources) - set(LABEL_SOURCES))
        if unknown:
            raise RlthfError(f"--only: unknown label source(s) {unknown}; choose from {', '.join(LABEL_SOURCES)}")
        return self.subset([i for i, s in enumerate(self.label_source) if s in set(sources)])

    def split(self, eval_fraction: float, *, seed: int = 0) -> tuple["CuratedSet", "CuratedSet"]:
        """(train, eval) by distinct ``pair_id``; ``eval_fraction`` in [0, 1), 0 = no eval rows."""
        if not 0.0 <= eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        ids = sorted(set(self.pair_id))
        n_eval = int(round(len(ids) * eval_fraction))
        if eval_fraction > 0 and len(ids) >= 2:
            n_eval = min(max(n_eval, 1), len(ids) - 1)
        rng = np.random.default_rng(seed)
        eval_ids = set(rng.permutation(ids)[:n_eval].tolist())
        train = [i for i, p in enumerate(self.pair_id) if p not in eval_ids]
        evals = [i for i, p in enumerate(self.pair_id) if p in eval_ids]
        return self.subset(train), self.subset(evals)

    def swap(self, flip: Sequence[bool], *, source: str = LabelSource.RM.value) -> "CuratedSet":
        """Chosen and rejected exchanged where ``flip`` (N,) is true; those rows get ``source``."""
        if len(flip) != len(self):
            raise ValueError(f"flip has {len(flip)} entries for {len(self)} rows")
        chosen = [r if f else c for c, r, f in zip(self.chosen, self.rejected, flip)]
        rejected = [c if f else r for c, r, f in zip(self.chosen, self.rejected, flip)]
        sources = [source if f else s for s, f in zip(self.label_source, flip)]
        return CuratedSet(self.pair_id, self.prompt, chosen, rejected, sources, self.iteration, self.amplification)

    def summary(self) -> dict:
        """Counts per label_source (pairs and amplified rows) and the human share of both."""
        pairs = Counter(self.label_source)
        rows = Counter()
        for s, a in zip(self.label_source, self.amplification):
            rows[s] += a
        n_rows = sum(rows.values())
        return {
            "pairs": len(self), "rows_amplified": n_rows,
            "pairs_by_source": {s: pairs[s] for s in LABEL_SOURCES if pairs[s]},
            "rows_by_source": {s: rows[s] for s in LABEL_SOURCES if rows[s]},
            "human_share_pairs": pairs[LabelSource.HUMAN.value] / len(self) if len(self) else 0.0,
            "human_share_rows": rows[LabelSource.HUMAN.value] / n_rows if n_rows else 0.0,
            "iterations": sorted({i for i in self.iteration if i is not None}),
        }


def _check_row(row, where: str, line: int) -> list[InputProblem]:
    if not isinstance(row, dict):
        return [InputProblem(where, line, None, "not a JSON object")]
    out = [InputProblem(where, line, k, "missing") for k in REQUIRED if k not in row]
    for k in ("prompt", "chosen", "rejected", "pair_id"):
        if k in row and not isinstance(row[k], str):
            out.append(InputProblem(where, line, k, f"must be a string, got {type(row[k]).__name__}"))
    if "label_source" in row and row["label_source"] not in LABEL_SOURCES:
        out.append(InputProblem(where, line, "label_source",
                                f"{row['label_source']!r} is not one of {', '.join(LABEL_SOURCES)}"))
    for k, low in (("amplification", 1), ("iteration", 0)):
        v = row.get(k)
        if k == "iteration" and v is None:
            continue  # no iteration set this label (an ``ai`` row)
        if k in row and not _is_int(v, low):
            allowed = "null or an integer" if k == "iteration" else "an integer"
            out.append(InputProblem(where, line, k, f"must be {allowed} >= {low}, got {v!r}"))
    if row.get("reason") is not None and not isinstance(row["reason"], dict):
        out.append(InputProblem(where, line, "reason", f"must be an object or null, got {type(row['reason']).__name__}"))
    if row.get("label_judge") is not None and not isinstance(row["label_judge"], str):
        out.append(InputProblem(where, line, "label_judge",
                                f"must be a string or null, got {type(row['label_judge']).__name__}"))
    version = row.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        out.append(InputProblem(where, line, "schema_version",
                                f"this rlthf_plugin reads curated-set version {SCHEMA_VERSION}, got {version!r}"))
    return out


def _is_int(v, low: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v == int(v) and v >= low


def _value(row: dict, k: str):
    if k == "amplification" or (k == "iteration" and row[k] is not None):
        return int(row[k])
    return row[k]


def to_row(values: dict) -> dict:
    """A row as written to JSONL: ``schema_version`` first, then :data:`REQUIRED` in order,
    then the :data:`OPTIONAL` fields ``values`` has."""
    return {"schema_version": SCHEMA_VERSION, **{k: values[k] for k in REQUIRED},
            **{k: values[k] for k in OPTIONAL if k in values}}


def read_curated(path: str | Path) -> CuratedSet:
    """Read a curated JSONL export; every bad line is reported with its number and field."""
    path = Path(path)
    rows, problems = [], []
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                rows.append((line, json.loads(text)))
            except json.JSONDecodeError as e:
                problems.append(InputProblem(str(path), line, None, f"invalid JSON: {e.msg}"))
    for line, row in rows:
        problems.extend(_check_row(row, str(path), line))
    if problems:
        raise InvalidInputError(problems, hint=f"expected the curated export of `rlthf export` (keys {', '.join(REQUIRED)})")
    if not rows:
        raise RlthfError(f"{path}: no rows")
    return CuratedSet.from_rows([r for _, r in rows], where=str(path))


def write_curated(path: str | Path, data: CuratedSet) -> None:
    """Write ``data`` in the export's JSONL format."""
    with Path(path).open("w", encoding="utf-8") as f:
        for i in range(len(data)):
            f.write(json.dumps(to_row({k: getattr(data, k)[i] for k in REQUIRED}), ensure_ascii=False) + "\n")


def write_rows(path: str | Path, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
               amplification: Sequence[int] | None = None, label_source: str = "ai") -> None:
    """Triples as a curated JSONL file (pair ids ``row-<i>``), e.g. for a launched subprocess."""
    n = len(prompts)
    amp = [1] * n if amplification is None else [int(a) for a in amplification]
    write_curated(path, CuratedSet([f"row-{i}" for i in range(n)], list(prompts), list(chosen), list(rejected),
                                   [label_source] * n, [0] * n, amp))

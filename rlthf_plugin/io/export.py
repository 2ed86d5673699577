"""The curated preference set: every valid pair with its best label, ready for TRL.

A pair keeps its AI label unless something better says otherwise, in this order:

1. ``human``: a human label (not from the ground-truth platforms, see
   ``selection.ground_truth``) with a winner; a human tie leaves the pair out;
2. ``flipped``: the latest iteration flipped it (only through the evidence gate, unless
   configured otherwise);
3. ``trusted_ai``: the latest iteration kept it in the trusted region;
4. ``rm``: the latest reward model's preference, only when that iteration's held-out
   check (``stats.rm_check.better``, McNemar on the uniform audit sample) showed the RM
   beating the AI labels;
5. ``ai``: the audited AI label: the primary judge's (``selection.primary_judge``), or on a
   pair the primary did not vote on, that of the best-covered judge that did; a winner A or
   B (AI ties, a judge that contradicted itself across orders and parse errors leave the
   pair out).

Each row follows the curated-set schema (:mod:`rlthf_plugin.io.curated`,
``docs/curated-set.md``) that ``rlthf train`` reads: ``pair_id, prompt, chosen, rejected,
label_source, iteration`` (int or None), ``amplification`` (the alpha of the asking
iteration for human pairs, else 1) and ``reason``: the latest selection's machine reason
for the pair (region, margin, rank, ...; None when it was not a candidate), which labelers
never saw; ``label_judge``: the judge whose AI label the row's label was audited from (None
on ``human`` rows); with ``schema_version``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..config import Config, ground_truth_platforms
from ..errors import RlthfError
from ..pairs import A, B, majority, swap_label
from ..selection.rlthf import Action
from ..store.iterations import curation_inputs, page_decisions
from ..store.ledger import Ledger
from ..store.pairs import iter_pair_pages
from ..store.votes import audited_labels
from ..vocab import LABEL_SOURCES, LabelSource
from .curated import CuratedSet, to_row

EXPORT_FILE = "curated.jsonl"


def curated_rows(ledger: Ledger, *, only: Iterable[str] | None = None, config: Config | None = None) -> list[dict]:
    """One dict per valid pair, in pair-id order; ``only`` restricts the label sources."""
    return list(iter_curated_rows(ledger, only=only, config=config))


def iter_curated_rows(ledger: Ledger, *, only: Iterable[str] | None = None,
                      config: Config | None = None) -> Iterator[dict]:
    """:func:`curated_rows` one at a time: the pairs' texts are read a page at a time, so
    memory holds the labels per pair id, not the texts."""
    only_set = set(only) if only is not None else None
    if only_set is not None and (bad := only_set - set(LABEL_SOURCES)):
        raise RlthfError(f"unknown label source(s) {sorted(bad)}; known: {', '.join(LABEL_SOURCES)}")
    config = config or Config()
    truth = ground_truth_platforms(config)
    its, labels, latest, _ = curation_inputs(ledger, with_decisions=False)  # decisions: a page at a time
    human_rows = [r for r in labels if r.platform not in truth]
    alpha = {r["id"]: int(round(float((r["params"] or {}).get("amplification", 1)))) for r in its}
    rm_ok = bool(latest and ((latest["stats"] or {}).get("rm_check") or {}).get("better"))
    votes: dict[str, list[str]] = {}
    asked: dict[str, int | None] = {}
    for r in human_rows:
        votes.setdefault(r.pair_id, []).append(r.label)
        if r.iteration is not None:
            asked[r.pair_id] = r.iteration
    audited = audited_labels(ledger, config.selection.primary_judge)
    for page in iter_pair_pages(ledger):
        decisions, reasons = page_decisions(ledger, latest["id"], [p.id for p in page]) if latest else ({}, {})
        for p in page:
            row = _best(p.id, votes, asked, alpha, decisions, rm_ok, audited.labels, latest["id"] if latest else None)
            if row is None or (only_set is not None and row[1] not in only_set):
                continue
            label, source, iteration, amp = row
            chosen, rejected = p.chosen_rejected(label)
            yield {"pair_id": p.id, "prompt": p.prompt, "chosen": chosen, "rejected": rejected,
                   "label_source": source, "iteration": iteration, "amplification": amp,
                   "reason": reasons.get(p.id),
                   "label_judge": None if source == LabelSource.HUMAN.value else audited.judges.get(p.id)}


def _best(pid: str, votes: dict, asked: dict, alpha: dict, decisions: dict, rm_ok: bool, ai: dict,
          latest: int | None) -> tuple[str, str, int | None, int] | None:
    if pid in votes:
        m = majority(votes[pid])
        if m.label in (A, B):
            it = asked.get(pid)
            return m.label, LabelSource.HUMAN.value, it, max(1, alpha.get(it, 1)) if it is not None else 1
        if m.label is not None:  # a human tie / no majority: no winner to train on
            return None
    ai_label = ai.get(pid)
    if ai_label not in (A, B):  # an AI tie, an inconsistent label judge or a parse error
        return None
    d = decisions.get(pid)
    if d is not None:
        action, margin = d
        if action == Action.FLIP:
            return swap_label(ai_label), LabelSource.FLIPPED.value, latest, 1
        if action == Action.KEEP:
            return ai_label, LabelSource.TRUSTED_AI.value, latest, 1
        if rm_ok and margin is not None and margin < 0:
            return swap_label(ai_label), LabelSource.RM.value, latest, 1
        if rm_ok and margin is not None:
            return ai_label, LabelSource.RM.value, latest, 1
    return ai_label, LabelSource.AI.value, None, 1


def write_export(rows: Iterable[dict[str, Any]], out: str | Path) -> Path:
    """Write rows as JSON lines to ``out`` (a ``.jsonl`` file, or a folder: ``curated.jsonl`` in it).

    Rows are written as they come (any iterable) to a temporary file beside ``out`` that
    replaces it at the end, so a crash never leaves half an export under the final name.
    """
    path = Path(out)
    if path.suffix != ".jsonl":
        path.mkdir(parents=True, exist_ok=True)
        path = path / EXPORT_FILE
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(to_row(row), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def curated_from_workspace(ledger: Ledger, *, config: Config, only: Iterable[str] | None = None) -> CuratedSet:
    """The curated set straight from the ledger, as ``rlthf export`` writes it with the
    workspace's ``config`` (``selection.ground_truth`` labels are never training labels)."""
    rows = curated_rows(ledger, only=list(only) if only else None, config=config)
    if not rows:
        raise RlthfError("the workspace has no curated pairs yet: import, label and select first")
    return CuratedSet.from_rows(rows, where="workspace ledger")

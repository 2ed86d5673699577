"""The simulated annotator and the evaluation against ground truth.

:func:`label_with_oracle` answers an iteration's asked pairs from ground truth (for
evaluation and the demo) through :func:`rlthf_plugin.loop.sync.store_labels`, the same path
as labels pulled from Label Studio or Argilla. :func:`evaluate` and :func:`flip_precision`
measure the curated labels and the flips against the ``selection.ground_truth`` platforms.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from ..backends.base import HumanLabel
from ..config import Config, ground_truth_platforms
from ..errors import ConfigError, RlthfError
from ..pairs import A, B, majority, normalize_label
from ..selection.rlthf import Action
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.votes import audited_labels, iteration_primary
from ..vocab import IterationState
from .pool import ORACLE_PLATFORM, read_pool
from .owner import IterationOwner, owned

from .sync import store_labels
from .tasks import asked_tasks, latest_iteration


# -- the simulated annotator --------------------------------------------------------------------
def parse_annotator(spec: str) -> str:
    """``oracle:FIELD`` -> FIELD; anything else is an error naming the accepted form."""
    kind, _, name = spec.partition(":")
    if kind != "oracle" or not name:
        raise ConfigError(f"unknown annotator '{spec}': use oracle:FIELD (e.g. oracle:human), or push to a "
                          "labeling platform with 'rlthf push'")
    return name


def answer_of(votes: Sequence[str]) -> str:
    """The answer a set of human votes gives: the winner A or B, ``tie`` (a tie or no
    majority) or ``skip`` (no vote)."""
    return {A: A, B: B, None: "skip"}.get(majority(votes).label, "tie")


def oracle_answers(ledger: Ledger, config: Config, field_name: str, pair_ids: Sequence[str]) -> dict[str, str]:
    """Ground-truth answers for pairs: A, B, tie, or skip (no answer).

    ``human`` (or ``human_label``) answers with the majority of the ground-truth platforms'
    human labels (``selection.ground_truth``); any other FIELD reads that field of the
    imported row (the pair's metadata), e.g. a gold label column.
    """
    if field_name in ("human", "human_label"):
        platforms = ground_truth_platforms(config)
        if not platforms:
            raise ConfigError("oracle:human needs selection.ground_truth (the platforms holding the true labels)")
        votes: dict[str, list[str]] = defaultdict(list)
        wanted = set(pair_ids)
        for r in label_rows(ledger):
            if r.pair_id in wanted and r.platform in platforms:
                votes[r.pair_id].append(r.label)
        return {pid: answer_of(votes.get(pid, [])) for pid in pair_ids}
    out = {}
    for p in ledger.get_pairs(pair_ids):
        value = p.metadata.get(field_name)
        try:
            out[p.id] = normalize_label(value) if value not in (None, "") else "skip"
        except ValueError as e:
            raise ConfigError(f"pair {p.id}: field '{field_name}': {e}") from e
    return out


@dataclass
class BatchReport:
    """What humans (or the oracle) answered on one iteration's batch."""

    iteration: int
    asked: int
    answered: int
    new: int
    ai_errors: int
    precision: float | None    # AI errors / answered with a winner


def label_with_oracle(ledger: Ledger, config: Config, annotator: str, *, iteration: int | None = None,
                      owner: IterationOwner | None = None) -> BatchReport:
    """Answer an iteration's asked pairs (default: the latest) from ground truth; idempotent.

    Runs as the iteration's owner (``owner``, or a fresh one for the call): raises
    :class:`~rlthf_plugin.errors.LeaseHeldError` when another process moves the iteration,
    and each write is fenced by the lease.
    """
    field_name = parse_annotator(annotator)  # a bad spec fails before the lease is asked for
    with owned(ledger, owner) as o:
        return _label_with_oracle(ledger, config, annotator, field_name, iteration, o)


def _label_with_oracle(ledger: Ledger, config: Config, annotator: str, field_name: str, iteration: int | None,
                       owner: IterationOwner) -> BatchReport:
    it = latest_iteration(ledger) if iteration is None else iteration
    if it is None:
        raise RlthfError("no iteration yet: run 'rlthf select' first")
    tasks = asked_tasks(ledger, it)
    answers = oracle_answers(ledger, config, field_name, [t.pair.id for t in tasks])
    labels = [HumanLabel(pair_id=pid, label=label, annotator=annotator, platform=ORACLE_PLATFORM,
                         external_id=f"{annotator}:{pid}") for pid, label in answers.items()]
    new = store_labels(ledger, labels, iteration=it, fence=owner.fence)
    report = close_batch(ledger, config, it, answers, owner=owner)
    report.new = new
    return report


def close_batch(ledger: Ledger, config: Config, iteration: int, answers: dict[str, str], *,
                owner: IterationOwner | None = None) -> BatchReport:
    """Add the batch's AI-error precision (:func:`batch_report`) and the evaluation against
    ground truth (:func:`evaluate`) to the iteration's stats, and mark it labeled (fenced
    by ``owner``'s lease when given)."""
    report = batch_report(ledger, iteration, answers)
    ev = evaluate(ledger, config)
    batch = {"asked": report.asked, "answered": report.answered, "ai_errors": report.ai_errors,
             "precision": report.precision}
    iterations_db.finish_iteration(ledger, iteration, IterationState.LABELED,
                                   lambda stats: {**stats, "batch": batch, "eval": ev if ev["pairs"] else None},
                                   fence=owner.fence if owner is not None else None)
    return report


def batch_report(ledger: Ledger, iteration: int, answers: dict[str, str]) -> BatchReport:
    """AI-error precision of a batch: the share of answered pairs whose AI label was wrong."""
    ai = audited_labels(ledger, iteration_primary(ledger, iteration), list(answers)).labels
    winners = {pid: lab for pid, lab in answers.items() if lab in (A, B) and ai.get(pid) in (A, B)}
    errors = sum(1 for pid, lab in winners.items() if ai[pid] != lab)
    answered = sum(1 for lab in answers.values() if lab != "skip")
    return BatchReport(iteration, len(answers), answered, 0, errors, errors / len(winners) if winners else None)


# -- evaluation against ground truth ------------------------------------------------------------
def evaluate(ledger: Ledger, config: Config) -> dict[str, Any]:
    """Curated labels vs ground truth: accuracy, AI accuracy, share of AI errors fixed.

    Measured on the pairs that have a ground-truth winner (A or B) and an AI winner.
    """
    from ..io.export import curated_rows

    pool = read_pool(ledger, config)
    rows = {r["pair_id"]: r for r in curated_rows(ledger, config=config)}
    n = correct = ai_correct = ai_errors = fixed = 0
    sources: Counter = Counter()
    for i, p in enumerate(pool.pairs):
        if pool.truth[i] not in (A, B) or pool.ai[i] not in (A, B):
            continue
        n += 1
        ai_ok = pool.ai[i] == pool.truth[i]
        ai_correct += ai_ok
        row = rows.get(p.id)
        label = None
        if row is not None:
            label = A if row["chosen"] == p.response_a else B
            sources[row["label_source"]] += 1
        ok = label == pool.truth[i] if label else ai_ok
        correct += ok
        if not ai_ok:
            ai_errors += 1
            fixed += ok
    return {"pairs": n, "curated_accuracy": correct / n if n else None, "ai_accuracy": ai_correct / n if n else None,
            "ai_errors": ai_errors, "ai_errors_fixed": fixed, "fixed_share": fixed / ai_errors if ai_errors else None,
            "sources": dict(sources)}


def flip_precision(ledger: Ledger, config: Config, iteration: int) -> float | None:
    """Share of an iteration's flips that were AI errors by ground truth (None without flips)."""
    pool = read_pool(ledger, config)
    flips = [d["pair_id"] for d in iterations_db.decisions(ledger, iteration) if d["action"] == Action.FLIP]
    judged = [pool.index[p] for p in flips if pool.truth[pool.index[p]] in (A, B)]
    if not judged:
        return None
    return sum(pool.truth[i] != pool.ai[i] for i in judged) / len(judged)


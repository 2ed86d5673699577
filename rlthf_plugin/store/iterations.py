"""Iterations and their decisions: one ``iterations`` row per iteration (state, params,
stats) and one ``decisions`` row per pair it decided on (action, region, margin...)."""

from __future__ import annotations

import math
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import sqlalchemy as sa

from ..selection.rlthf import Action
from ..vocab import SELECTING_STATES, IterationState, derived_reason
from . import schema as S
from ._sql import INSERT_CHUNK, Fence, insert_ignore_bulk, now, select_in
from .labels import LabelRow, label_row_query

if TYPE_CHECKING:
    from .ledger import Ledger

_UNFINISHED = [s.value for s in SELECTING_STATES]


def iteration_rows(ledger: Ledger) -> list[dict]:
    """Every iteration row (id, state, params, stats, started_at, finished_at), by id."""
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(S.iterations).order_by(S.iterations.c.id)).mappings()]


def latest_iteration(ledger: Ledger) -> int | None:
    """The id of the latest iteration (None before the first)."""
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(S.iterations.c.id))).scalar()


def latest_row(ledger: Ledger) -> dict | None:
    """The latest iteration's row, or None."""
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(S.iterations).order_by(S.iterations.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def latest_selected(ledger: Ledger) -> int | None:
    """The id of the latest iteration whose selection finished (None when none has)."""
    t = S.iterations
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(t.c.id)).where(t.c.state.notin_(_UNFINISHED))).scalar()


def iteration_params(ledger: Ledger, iteration: int | None = None) -> dict:
    """The params of one iteration (default: the latest); {} when there is none."""
    t = S.iterations
    with ledger.engine.connect() as conn:
        q = sa.select(t.c.params).order_by(t.c.id.desc())
        if iteration is not None:
            q = q.where(t.c.id == iteration)
        return conn.execute(q.limit(1)).scalar() or {}


def count_iterations(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(S.iterations)).scalar_one()


def iteration_stats(ledger: Ledger, iteration: int) -> dict:
    """The stats of one iteration ({} when none)."""
    t = S.iterations
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(t.c.stats).where(t.c.id == iteration)).scalar() or {}


def begin_iteration(ledger: Ledger, iteration: int, params: dict, *, fence: Fence | None = None) -> None:
    """(Re)start ``iteration`` in state ``selecting``, dropping what an earlier try recorded."""
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        conn.execute(S.decisions.delete().where(S.decisions.c.iteration == iteration))
        conn.execute(S.iterations.delete().where(S.iterations.c.id == iteration))
        conn.execute(S.iterations.insert().values(id=iteration, state=IterationState.SELECTING.value, params=params, stats={},
                                                  started_at=now()))


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) as None: PostgreSQL's JSON type has no
    NaN (SQLite's JSON text took it), so stats such as an unfitted error model's intercept
    would fail the whole iteration's write there."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def record_selection(ledger: Ledger, iteration: int, decisions: Iterable[dict], stats: dict, *,
                     fence: Fence | None = None) -> None:
    """Store an iteration's decisions and stats and mark it ``selected``, in one transaction;
    ``decisions`` may be a generator (written a chunk at a time: bounded memory).

    The stats get ``selected_at`` (ISO time, UTC): what happened after it (judge calls of
    the next escalation) belongs to the next iteration.
    """
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        rows = iter(decisions)
        while chunk := list(islice(rows, INSERT_CHUNK)):
            insert_ignore_bulk(conn, S.decisions, chunk)  # tuples to the driver: no per-row SQLAlchemy work
        conn.execute(S.iterations.update().where(S.iterations.c.id == iteration)
                     .values(state=IterationState.SELECTED.value,
                             stats=json_safe({**stats, "selected_at": now().isoformat()})))


def set_iteration_state(ledger: Ledger, iteration: int, state: str, *, stats: dict | None = None,
                        finished: bool = False, fence: Fence | None = None) -> None:
    """Set an iteration's state (and its stats; ``finished`` stamps finished_at)."""
    values: dict[str, Any] = {"state": IterationState(state).value}
    if stats is not None:
        values["stats"] = json_safe(stats)
    if finished:
        values["finished_at"] = now()
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        conn.execute(S.iterations.update().where(S.iterations.c.id == iteration).values(**values))


def finish_iteration(ledger: Ledger, iteration: int, state: str, update: Callable[[dict], dict], *,
                     fence: Fence | None = None) -> None:
    """Read an iteration's stats, replace them by ``update(stats)``, set ``state`` and
    finished_at, all in one transaction."""
    t = S.iterations
    with ledger.engine.begin() as conn:
        if fence is not None:
            fence(conn)
        stats = conn.execute(sa.select(t.c.stats).where(t.c.id == iteration)).scalar() or {}
        conn.execute(t.update().where(t.c.id == iteration).values(state=IterationState(state).value,
                                                                  stats=json_safe(update(stats)),
                                                                  finished_at=now()))


def decisions(ledger: Ledger, iteration: int | None = None) -> list[dict]:
    """The decision rows of one iteration (every iteration's when None)."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        q = sa.select(t) if iteration is None else sa.select(t).where(t.c.iteration == iteration)
        return [dict(r) for r in conn.execute(q).mappings()]


def decision_stream(ledger: Ledger, iteration: int, *, page: int = 10_000) -> Iterator[dict]:
    """(pair_id, action, region, reason) of one iteration's decision rows, read a page at a
    time: a million-pair iteration never sits in memory as rows (the quality estimate)."""
    t = S.decisions
    q = sa.select(t.c.pair_id, t.c.action, t.c.region, t.c.reason).where(t.c.iteration == iteration)
    with ledger.engine.connect() as conn:
        for r in conn.execution_options(yield_per=page).execute(q).mappings():
            yield {"pair_id": r["pair_id"], "action": r["action"], "region": r["region"], "reason": r["reason"]}


def audit_stream(ledger: Ledger, iteration: int, *, page: int = 10_000) -> Iterator[dict]:
    """As :func:`decision_stream`, only the rows whose reason names a flip audit (``audit`` or
    ``audit_flip``, :mod:`rlthf_plugin.loop.flip_audit`): filtered in SQL on the reason's text,
    so the next select does not parse every dropped row's reason of a million-pair iteration."""
    t = S.decisions
    q = (sa.select(t.c.pair_id, t.c.action, t.c.region, t.c.reason)
         .where(t.c.iteration == iteration, sa.cast(t.c.reason, sa.Text).like('%"audit%')))
    with ledger.engine.connect() as conn:
        for r in conn.execution_options(yield_per=page).execute(q).mappings():
            yield {"pair_id": r["pair_id"], "action": r["action"], "region": r["region"], "reason": r["reason"]}


def pair_decisions(ledger: Ledger, pair_id: str) -> list[dict]:
    """Every decision about one pair, oldest iteration first (with its machine reason; a
    dropped pair's is derived from its code, :func:`~rlthf_plugin.vocab.derived_reason`)."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t).where(t.c.pair_id == pair_id).order_by(t.c.iteration))
                .mappings()]
    for r in rows:
        r["reason"] = shown_reason(r)
    return rows


def shown_reason(row: dict) -> dict:
    """A decision row's reason as shown: the stored one, or the one its code stands for."""
    stored = row["reason"] or {}
    if set(stored) - {"p_wrong", "audit"}:
        return stored
    # a dropped pair stores at most its P(wrong) (the quality estimate reads it) and its audit
    # region (loop.flip_audit); the rest is its code
    return {**derived_reason(row["action"], row["region"], row["margin"], row["rank"]), **stored}


def asked_order(ledger: Ledger, iteration: int, *, limit: int | None = None) -> list[str]:
    """Pair ids of the ``ask`` decisions of an iteration, highest priority first (then by pair id)."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        q = (sa.select(t.c.pair_id).where(t.c.iteration == iteration, t.c.action == Action.ASK.value)
             .order_by(t.c.priority.desc(), t.c.pair_id))
        return list(conn.execute(q.limit(limit) if limit else q).scalars())


def asked_decisions(ledger: Ledger, iteration: int, pair_ids: Sequence[str]) -> dict[str, dict]:
    """pair id -> its ``ask`` decision row in an iteration, for ``pair_ids`` (one page of tasks)."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        rows = select_in(conn, lambda c: sa.select(t).where(t.c.iteration == iteration, t.c.action == Action.ASK.value,
                                                             t.c.pair_id.in_(c)), pair_ids)
        return {r.pair_id: dict(r._mapping) for r in rows}


def asked_pair_ids(ledger: Ledger, iteration: int) -> list[str]:
    """Ids of the pairs an iteration asked humans about, sorted."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.pair_id).where(t.c.iteration == iteration,
                                                                 t.c.action == Action.ASK.value)).scalars())


def asked_from_region(ledger: Ledger, region: str) -> set[str]:
    """Ids of the pairs any iteration asked while they lay in ``region`` (flip, audit...)."""
    t = S.decisions
    with ledger.engine.connect() as conn:
        return set(conn.execute(sa.select(t.c.pair_id).where(t.c.action == Action.ASK.value,
                                                              t.c.region == str(region))).scalars())


class CurationInputs(NamedTuple):
    """What the curated export reads, from one consistent snapshot."""

    iterations: list[dict]
    labels: list[LabelRow]
    #: The latest iteration whose selection finished, and its decisions: pair id -> (action,
    #: margin). The reasons are read a page at a time (:func:`decision_reasons`): at 1M pairs
    #: holding them all took 2 GB.
    latest: dict | None
    decisions: dict[str, tuple[str, float | None]]


def curation_inputs(ledger: Ledger, *, with_decisions: bool = True) -> CurationInputs:
    """Iterations, human labels and the latest finished selection's decisions, read together
    (without the decisions: ``decisions`` is empty, read them a page at a time with
    :func:`page_decisions`)."""
    d = S.decisions
    with ledger.engine.connect() as conn:
        its = [dict(r) for r in conn.execute(sa.select(S.iterations).order_by(S.iterations.c.id)).mappings()]
        labels = [LabelRow(*r) for r in conn.execute(label_row_query())]
        done = [r for r in its if r["state"] not in _UNFINISHED]
        latest = done[-1] if done else None
        rows: dict[str, tuple[str, float | None]] = {}
        if latest is not None and with_decisions:
            q = sa.select(d.c.pair_id, d.c.action, d.c.margin).where(d.c.iteration == latest["id"])
            rows = {pid: (action, margin) for pid, action, margin in conn.execute(q)}
    return CurationInputs(its, labels, latest, rows)


def decision_actions(ledger: Ledger, iteration: int) -> Iterator[tuple[str, str]]:
    """(pair id, action) of every decision of ``iteration``, read without the other columns."""
    d = S.decisions
    with ledger.engine.connect() as conn:
        yield from conn.execute(sa.select(d.c.pair_id, d.c.action).where(d.c.iteration == iteration)).tuples()


def latest_margins(ledger: Ledger, pair_ids: Sequence[str]) -> dict[str, float]:
    """pair id -> the margin of its latest decision (any iteration), for ``pair_ids`` that have
    one: only those pairs' (iteration, margin) are read (e.g. the human-labeled ones)."""
    d = S.decisions
    latest: dict[str, tuple[int, float]] = {}
    with ledger.engine.connect() as conn:
        for pid, it, margin in select_in(conn, lambda c: sa.select(d.c.pair_id, d.c.iteration, d.c.margin)
                                         .where(d.c.pair_id.in_(c), d.c.margin.is_not(None)), pair_ids):
            if pid not in latest or it > latest[pid][0]:
                latest[pid] = (it, float(margin))
    return {pid: m for pid, (_, m) in latest.items()}


def page_decisions(ledger: Ledger, iteration: int,
                   pair_ids: Sequence[str]) -> tuple[dict[str, tuple[str, float | None]], dict[str, Any]]:
    """For ``pair_ids`` (a page of pairs): pair id -> (action, margin) and pair id -> the
    machine reason as shown, of their decisions in ``iteration``, in one read."""
    d = S.decisions
    actions: dict[str, tuple[str, float | None]] = {}
    reasons: dict[str, Any] = {}
    with ledger.engine.connect() as conn:
        for r in select_in(conn, lambda c: sa.select(d.c.pair_id, d.c.reason, d.c.action, d.c.region, d.c.margin,
                                                     d.c.rank).where(d.c.iteration == iteration, d.c.pair_id.in_(c)),
                           pair_ids):
            actions[r.pair_id] = (r.action, r.margin)
            reasons[r.pair_id] = shown_reason(r._asdict())
    return actions, reasons


def decision_reasons(ledger: Ledger, iteration: int, pair_ids: Sequence[str]) -> dict[str, Any]:
    """pair id -> the machine reason of its decision in ``iteration``, for ``pair_ids``."""
    d = S.decisions
    with ledger.engine.connect() as conn:
        return {r.pair_id: shown_reason(r._asdict()) for r in select_in(
            conn, lambda c: sa.select(d.c.pair_id, d.c.reason, d.c.action, d.c.region, d.c.margin, d.c.rank)
            .where(d.c.iteration == iteration, d.c.pair_id.in_(c)), pair_ids)}


__all__ = ["CurationInputs", "asked_decisions", "asked_from_region", "asked_order", "asked_pair_ids", "begin_iteration",
           "iteration_params",
           "count_iterations", "curation_inputs", "decision_actions", "decision_reasons", "decisions", "finish_iteration",
           "iteration_rows",
           "iteration_stats", "json_safe", "latest_iteration", "latest_margins", "latest_row", "latest_selected",
           "page_decisions", "pair_decisions",
           "record_selection", "set_iteration_state", "shown_reason"]

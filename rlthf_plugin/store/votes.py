"""AI labels (``ai_labels``): imported votes, a judge's single-order answers and its verdicts,
and the votes by judge and order with the primary judge whose label is audited.

A judge call stores one row per order shown (``ab``, ``ba``) and the combined verdict under
order ``both``; imported votes have order ``""`` (or ``ab`` / ``ba`` given ``ai_order``).
:func:`ai_votes` / :func:`ai_majority` count verdicts and imported votes of unknown order.

By judge and order (:func:`read_votes`): every row is a vote of one judge in one order, or of
unknown order (``""``; ``both``: a judge call's combined verdict). Where the single-order
answers exist, they are the votes and the combined one is left out (it adds nothing they do
not say). A judge is named by its ``judge`` column; when one name was stored under several
prompt versions (the same model under two protocols), each version is its own judge,
``name@version``. :func:`resolve_primary` picks the primary judge (by name, or the judge with
the most labeled pairs) and :func:`primary_labels` gives the label it assigns each pair.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import sqlalchemy as sa

from ..errors import ConfigError
from ..pairs import PARSE_ERROR, Majority, majority
from ..selection.rlthf import Action
from ..vocab import Strategy
from ..selection.signals import encode_votes, primary_labels as _primary_labels
from . import schema as S
from ._sql import IN_CHUNK, insert_ignore, iter_chunks, select_in
from .iterations import decisions, iteration_params, iteration_rows, latest_iteration
from .labels import label_rows

if TYPE_CHECKING:
    from .ledger import Ledger

#: Orders whose rows are votes: a judge's combined verdict, or an imported label.
VOTE_ORDERS = ("", "both")


def ai_votes(ledger: Ledger) -> dict[str, list[str]]:
    """pair id -> every AI vote stored for it (imported votes and judge verdicts), oldest first."""
    t = S.ai_labels
    out: dict[str, list[str]] = defaultdict(list)
    with ledger.engine.connect() as conn:
        q = sa.select(t.c.pair_id, t.c.label).where(t.c.order.in_(VOTE_ORDERS)).order_by(t.c.id)
        for pid, label in conn.execute(q):
            out[pid].append(label)
    return dict(out)


def ai_majority(ledger: Ledger) -> dict[str, Majority]:
    """pair id -> the majority of its AI votes."""
    return {pid: majority(v) for pid, v in ai_votes(ledger).items()}


def count_votes(ledger: Ledger) -> int:
    """AI votes stored (verdicts and imported labels, not single-order answers)."""
    t = S.ai_labels
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.order.in_(VOTE_ORDERS))).scalar_one()


def unjudged_pair_ids(ledger: Ledger, judge: str, version: str, *, relabel: bool = False,
                      limit: int | None = None) -> list[str]:
    """Ids of pairs without a verdict of (``judge``, prompt ``version``), sorted.

    Pairs with another AI vote (imported, or another judge's) are left out unless ``relabel``.
    """
    t, p = S.ai_labels, S.pairs
    with ledger.engine.connect() as conn:
        done = sa.select(t.c.pair_id).where(t.c.judge == judge, t.c.prompt_version == version, t.c.order == "both")
        q = sa.select(p.c.id).where(p.c.id.not_in(done))
        if not relabel:
            other = sa.select(t.c.pair_id).where(t.c.order.in_(VOTE_ORDERS),
                                                 sa.or_(t.c.judge != judge, t.c.prompt_version != version))
            q = q.where(p.c.id.not_in(other))
        q = q.order_by(p.c.id)
        return list(conn.execute(q.limit(limit) if limit else q).scalars())


def judge_answers(ledger: Ledger, judge: str, version: str, orders: Sequence[str],
                  pair_ids: Sequence[str]) -> list[tuple[str, str, str, float | None]]:
    """(pair id, order, label, confidence) of the stored single-order answers of these pairs."""
    t = S.ai_labels
    with ledger.engine.connect() as conn:
        return [tuple(r) for r in select_in(conn, lambda c: sa.select(t.c.pair_id, t.c.order, t.c.label,
                                                                       t.c.confidence).where(
            t.c.judge == judge, t.c.prompt_version == version, t.c.order.in_(list(orders)), t.c.pair_id.in_(c)),
            pair_ids)]


def add_ai_labels(ledger: Ledger, rows: Sequence[dict]) -> None:
    """Insert AI label rows; a row whose (pair, judge, version, order, source) exists is kept as is."""
    with ledger.engine.begin() as conn:
        insert_ignore(conn, S.ai_labels, rows)


def forget_parse_errors(ledger: Ledger, judge: str, version: str, orders: Sequence[str]) -> int:
    """Delete this judge's parse-error answers and the verdicts built on them; returns how many calls."""
    t = S.ai_labels
    with ledger.engine.begin() as conn:
        bad = sa.select(t.c.pair_id).where(t.c.judge == judge, t.c.prompt_version == version,
                                           t.c.label == PARSE_ERROR, t.c.order.in_(list(orders)))
        pids = list(conn.execute(bad).scalars())
        if not pids:
            return 0
        for chunk in iter_chunks(pids, IN_CHUNK):
            conn.execute(t.delete().where(t.c.judge == judge, t.c.prompt_version == version,
                                          t.c.pair_id.in_(list(chunk)),
                                          sa.or_(t.c.order == "both", t.c.label == PARSE_ERROR)))
    return len(pids)


SINGLE_ORDERS = ("ab", "ba")


@dataclass(frozen=True)
class VoteTable:
    """The votes of some pairs, as arrays.

    Attributes
    ----------
    pair_ids : list of str, length N
    judges : list of str, length J
        Sorted judge names.
    votes : ndarray of float, shape (N, J, 2)
        +1 A, -1 B, 0 tie, NaN none (:func:`rlthf_plugin.selection.signals.encode_votes`).
    p_a : ndarray of float, shape (N, J, 2)
        The judge's P(A) where it gave log-probs, NaN elsewhere.
    labeled : dict of str to int
        Per judge: pairs with at least one vote that is not a parse error.
    """

    pair_ids: list[str]
    judges: list[str]
    votes: np.ndarray
    p_a: np.ndarray
    labeled: dict[str, int]


def vote_rows(ledger: Ledger) -> list[tuple[str, str, str, str, str, float | None]]:
    """(pair id, judge, prompt version, order, label, confidence) of every AI label row, oldest
    first. Always all rows: a judge's name (``name@version``) depends on every version stored."""
    t = S.ai_labels
    with ledger.engine.connect() as conn:
        q = sa.select(t.c.pair_id, t.c.judge, t.c.prompt_version, t.c.order, t.c.label, t.c.confidence)
        return [tuple(r) for r in conn.execute(q.order_by(t.c.id))]


def read_votes(ledger: Ledger, pair_ids: Sequence[str] | None = None) -> VoteTable:
    """Every AI vote of the given pairs (default: every pair with a vote), by judge and order."""
    rows = vote_rows(ledger)
    versions: dict[str, set[str]] = defaultdict(set)
    for _, judge, version, _, _, _ in rows:
        versions[judge].add(version)
    single = {(pid, judge, version) for pid, judge, version, order, _, _ in rows if order in SINGLE_ORDERS}
    if pair_ids is None:
        pair_ids = sorted({r[0] for r in rows})
    index = {pid: i for i, pid in enumerate(pair_ids)}
    kept = []
    for pid, judge, version, order, label, conf in rows:
        if pid not in index:
            continue
        if order == "both" and (pid, judge, version) in single:
            continue  # the combined verdict of single-order answers we already have
        name = judge if len(versions[judge]) == 1 else f"{judge}@{version}"
        if order not in SINGLE_ORDERS:
            order = ""
        if order and label == "tie_inconsistent":  # cannot happen for one order; keep it honest
            label = "tie"
        p = np.nan
        if conf is not None and label in ("A", "B"):
            p = conf if label == "A" else 1 - conf  # stored: P(its label); wanted: P(A)
        kept.append((index[pid], name, order, label, p))
    judges = sorted({k[1] for k in kept})
    jidx = {j: k for k, j in enumerate(judges)}
    votes, p_a = encode_votes([k[0] for k in kept], [jidx[k[1]] for k in kept], [k[2] for k in kept],
                              [k[3] for k in kept], n_pairs=len(pair_ids), n_judges=len(judges),
                              p_a=[k[4] for k in kept])
    labeled = {j: int(np.isfinite(votes[:, k, :]).any(axis=1).sum()) for j, k in jidx.items()}
    return VoteTable(list(pair_ids), judges, votes, p_a, labeled)


def resolve_primary(table: VoteTable, name: str = "") -> int:
    """Index of the primary judge: ``name``, or (empty) the judge with the most labeled pairs.

    Raises
    ------
    ConfigError
        When ``name`` matches no judge: the message lists the judges present.
    """
    if not table.judges:
        raise ConfigError("no AI votes in the workspace: import AI labels or run 'rlthf label-ai' first")
    if name:
        if name not in table.judges:
            present = ", ".join(f"'{j}' ({table.labeled[j]} pairs)" for j in table.judges)
            raise ConfigError(f"selection.primary_judge '{name}' matches no AI votes; judges present: {present}")
        return table.judges.index(name)
    return max(range(len(table.judges)), key=lambda k: (table.labeled[table.judges[k]], -k))


def primary_labels(ledger: Ledger, primary_judge: str = "",
                   pair_ids: Sequence[str] | None = None) -> tuple[dict[str, str], str]:
    """(pair id -> the primary judge's label, the primary judge's name).

    ``primary_judge`` empty: the judge the latest iteration recorded, else the judge with
    the most labeled pairs. Labels: ``A``, ``B``, ``tie``, ``tie_inconsistent`` (its orders disagree); pairs without
    a primary vote are absent. An empty workspace gives ``({}, "")``.
    """
    return _primary_of(ledger, read_votes(ledger, pair_ids), primary_judge)


def _primary_of(ledger: Ledger, table: VoteTable, primary_judge: str) -> tuple[dict[str, str], str]:
    """:func:`primary_labels` over votes already read."""
    if not table.judges:
        return {}, ""
    if not primary_judge:  # unset: the judge the latest iteration audited, so it does not drift
        recorded = iteration_primary(ledger)
        primary_judge = recorded if recorded in table.judges else ""
    j = resolve_primary(table, primary_judge)
    labels = _primary_labels(table.votes, j)
    return {pid: str(lab) for pid, lab in zip(table.pair_ids, labels) if lab}, table.judges[j]


def agreement(table: VoteTable) -> dict[str, dict[str, tuple[int, int]]]:
    """Judge x judge agreement: ``out[a][b] = (agreeing, compared)`` over pairs where both
    name a winner (each judge's label over its orders; a split judge names none)."""
    labs = [_primary_labels(table.votes, k) for k in range(len(table.judges))]
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for a, la in zip(table.judges, labs):
        out[a] = {}
        for b, lb in zip(table.judges, labs):
            both = np.isin(la, ["A", "B"]) & np.isin(lb, ["A", "B"])
            out[a][b] = (int((la[both] == lb[both]).sum()), int(both.sum()))
    return out


def iteration_primary(ledger: Ledger, iteration: int | None = None) -> str:
    """The primary judge an iteration (default: the latest) audited; "" when none recorded."""
    return str(iteration_params(ledger, iteration).get("primary_judge") or "")


def judge_summary(ledger: Ledger, primary_judge: str = "") -> dict:
    """For ``rlthf status`` and the report: votes per judge, judge x judge agreement, the
    primary judge, and the error model's weights of the latest signals iteration."""
    table = read_votes(ledger)
    if not table.judges:
        return {"judges": {}, "agreement": {}, "primary_judge": None, "error_model": None}
    labels, primary = _primary_of(ledger, table, primary_judge)  # the votes are read once
    per = {}
    for k, j in enumerate(table.judges):
        v = table.votes[:, k, :]
        per[j] = {"pairs": table.labeled[j], "votes": int(np.isfinite(v).sum()),
                  "both_orders": int(np.isfinite(v).all(axis=1).sum()),
                  "split_orders": int((np.isfinite(v).all(axis=1) & (v[:, 0] != v[:, 1])).sum())}
    signals = [r for r in reversed(iteration_rows(ledger)) if (r["stats"] or {}).get("strategy") == Strategy.SIGNALS]
    em = {"iteration": signals[0]["id"], **(signals[0]["stats"].get("error_model") or {})} if signals else None
    return {"judges": per, "agreement": agreement(table), "primary_judge": primary,
            "primary_inconsistent": sum(1 for x in labels.values() if x == "tie_inconsistent"),
            "error_model": em}


def top_suspects(ledger: Ledger, top: int) -> list[str]:
    """The ``top`` pairs of the latest iteration most suspect of a wrong AI label and not yet
    labeled by a human: by P(wrong) (signals) or by the lowest margin (margin-curve)."""
    it = latest_iteration(ledger)
    if it is None:
        return []
    rows = decisions(ledger, it)
    labeled = {r.pair_id for r in label_rows(ledger) if r.iteration is not None}

    def suspicion(r: dict) -> float:
        p = (r["reason"] or {}).get("p_wrong")
        return float(p) if p is not None else -float(r["margin"] if r["margin"] is not None else 0.0)

    rows = [r for r in rows if r["pair_id"] not in labeled and r["action"] != Action.ASK.value]
    return [r["pair_id"] for r in sorted(rows, key=lambda r: (-suspicion(r), r["pair_id"]))[:top]]


__all__ = ["SINGLE_ORDERS", "VOTE_ORDERS", "VoteTable", "add_ai_labels", "agreement", "ai_majority", "ai_votes",
           "count_votes", "forget_parse_errors", "iteration_primary", "judge_answers", "judge_summary",
           "primary_labels", "read_votes", "resolve_primary", "top_suspects", "unjudged_pair_ids", "vote_rows"]

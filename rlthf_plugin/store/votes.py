"""AI labels (``ai_labels``): imported votes, a judge's single-order answers and its verdicts.

A judge call stores one row per order shown (``ab``, ``ba``) and the combined verdict under
order ``both``; imported votes have order ``""``. Only verdicts and imported votes count
as AI votes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Sequence

import sqlalchemy as sa

from ..pairs import PARSE_ERROR, Majority, majority
from . import schema as S
from ._sql import IN_CHUNK, insert_ignore, iter_chunks, select_in

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


__all__ = ["VOTE_ORDERS", "add_ai_labels", "ai_majority", "ai_votes", "count_votes", "forget_parse_errors",
           "judge_answers", "unjudged_pair_ids"]

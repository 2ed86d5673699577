"""AI labels (``ai_labels``): imported votes, a judge's single-order answers and its verdicts,
and the votes by judge and order with the audited label of each pair and its judge.

A judge call stores one row per order shown (``ab``, ``ba``) and the combined verdict under
order ``both``; imported votes have order ``""`` (or ``ab`` / ``ba`` given ``ai_order``).
:func:`ai_votes` / :func:`ai_majority` count verdicts and imported votes of unknown order.

By judge and order (:func:`read_votes`): every row is a vote of one judge in one order, or of
unknown order (``""``; ``both``: a judge call's combined verdict). Where the single-order
answers exist, they are the votes and the combined one is left out (it adds nothing they do
not say). A judge is named by its ``judge`` column; when one name was stored under several
prompt versions (the same model under two protocols), each version is its own judge,
``name@version``. :func:`resolve_primary` picks the primary judge (by name, or the judge with
the most labeled pairs) and :func:`audited_labels` gives each pair its audited label: the
primary judge's where it voted, else that of the best-covered judge that voted on the pair
(:func:`rlthf_plugin.selection.signals.label_judges`), with the judge it came from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import sqlalchemy as sa

from ..batching import batched
from ..errors import ConfigError
from ..pairs import PARSE_ERROR, Majority, majority
from ..selection.rlthf import Action
from ..vocab import Strategy
from ..selection.signals import audited_labels as _audited_labels, primary_labels as _primary_labels, settle
from ..selection.vote_tensor import ORDERS, SKIPPED_LABELS, VoteTensor
from . import schema as S
from .pair_ids import PairIds, encode_ids
from ._sql import IN_CHUNK, insert_ignore, select_in
from .iterations import decisions, iteration_params, iteration_rows, latest_iteration
from .labels import label_rows

if TYPE_CHECKING:
    from .ledger import Ledger

#: Orders whose rows are votes: a judge's combined verdict, or an imported label.
VOTE_ORDERS = ("", "both")
#: AI label rows read at a time by :func:`read_votes`.
VOTE_PAGE = 50_000


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


def answer_times(ledger: Ledger, judges: Sequence[str]) -> list[tuple]:
    """(pair id, judge, prompt version, order, created_at) of every stored answer and verdict
    of these judges (order ``ab`` / ``ba``: one call; ``both``: the combined verdict)."""
    t = S.ai_labels
    if not judges:
        return []
    with ledger.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t.c.pair_id, t.c.judge, t.c.prompt_version, t.c.order,
                                                         t.c.created_at).where(t.c.judge.in_(list(judges))))]


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
        for chunk in batched(pids, IN_CHUNK):
            conn.execute(t.delete().where(t.c.judge == judge, t.c.prompt_version == version,
                                          t.c.pair_id.in_(list(chunk)),
                                          sa.or_(t.c.order == "both", t.c.label == PARSE_ERROR)))
    return len(pids)


@dataclass(frozen=True)
class VoteTable:
    """The votes of some pairs, as arrays.

    Attributes
    ----------
    pair_ids : PairIds (a sequence of str), length N
    judges : list of str, length J
        Sorted names of every judge in the workspace (also those without a vote on these pairs).
    votes : ndarray of float, shape (N, J, 2)
        +1 A, -1 B, 0 tie, NaN none (:func:`rlthf_plugin.selection.signals.encode_votes`).
    p_a : ndarray of float, shape (N, J, 2)
        The judge's P(A) where it gave log-probs, NaN elsewhere.
    labeled : dict of str to int
        Per judge: pairs of the whole workspace (not only these) with at least one vote that
        is not a parse error; it ranks the judges, so a subset ranks them as the whole does.
    """

    pair_ids: Sequence[str]
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


def read_votes(ledger: Ledger, pair_ids: Sequence[str] | None = None, *, page: int = VOTE_PAGE) -> VoteTable:
    """Every AI vote of the given pairs (default: every pair with a vote), by judge and order.

    The rows are read ``page`` at a time and summed into the vote tensor
    (:class:`~rlthf_plugin.selection.vote_tensor.VoteTensor`); the pairs are found by
    binary search in a :class:`~rlthf_plugin.store.pair_ids.PairIds` (no row, id string or
    dict entry kept per vote). A combined verdict (order ``both``) whose single-order
    answers are stored is left out in the query."""
    t = S.ai_labels
    with ledger.engine.connect() as conn:
        versions: dict[str, set[str]] = defaultdict(set)
        for judge, version in conn.execute(sa.select(t.c.judge, t.c.prompt_version).distinct()):
            versions[judge].add(version)

        def name(judge: str, version: str) -> str:
            return judge if len(versions[judge]) == 1 else f"{judge}@{version}"

        covered: dict[str, int] = {name(j, v): 0 for j, vs in versions.items() for v in vs}
        for judge, version, count in conn.execute(
                sa.select(t.c.judge, t.c.prompt_version, sa.func.count(sa.distinct(t.c.pair_id)))
                .where(t.c.label.not_in(list(SKIPPED_LABELS))).group_by(t.c.judge, t.c.prompt_version)):
            covered[name(judge, version)] += int(count)
        if pair_ids is None:
            ids = PairIds(np.unique(encode_ids(conn.execute(sa.select(t.c.pair_id).distinct()).scalars())))
        else:
            ids = pair_ids if isinstance(pair_ids, PairIds) else PairIds(pair_ids)
        judges = sorted(covered)
        jidx = {j: k for k, j in enumerate(judges)}
        tensor = VoteTensor(len(ids), len(judges))
        s = t.alias("single")
        has_single = sa.exists().where(s.c.pair_id == t.c.pair_id, s.c.judge == t.c.judge,
                                       s.c.prompt_version == t.c.prompt_version, s.c.order.in_(list(ORDERS)))
        q = (sa.select(t.c.pair_id, t.c.judge, t.c.prompt_version, t.c.order, t.c.label, t.c.confidence)
             .where(sa.not_(sa.and_(t.c.order == "both", has_single))).order_by(t.c.id))
        for rows in conn.execution_options(yield_per=page).execute(q).partitions(page):
            _add_votes(tensor, ids, rows, name, jidx)
    votes, p_a = tensor.result()
    return VoteTable(ids, judges, votes, p_a, covered)


def _add_votes(tensor: VoteTensor, ids: PairIds, rows: Sequence[Any], name: Any, jidx: dict[str, int]) -> None:
    """Sum a page of ``ai_labels`` rows (pair id, judge, version, order, label, confidence)
    into ``tensor``; rows of pairs not in ``ids`` are left out."""
    at = ids.positions([r[0] for r in rows])
    kept = [(i, r) for i, r in zip(at.tolist(), rows) if i >= 0]
    if not kept:
        return
    pos, judge, order, label, p_a = [], [], [], [], []
    for i, (_, j, version, od, lab, conf) in kept:
        od = od if od in ORDERS else ""
        if od and lab == "tie_inconsistent":  # cannot happen for one order; keep it honest
            lab = "tie"
        pos.append(i)
        judge.append(jidx[name(j, version)])
        order.append(od)
        label.append(lab)
        p_a.append(np.nan if conf is None or lab not in ("A", "B") else (conf if lab == "A" else 1 - conf))
    tensor.add(pos, judge, order, label, p_a)  # stored: P(its label); wanted: P(A)


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


@dataclass(frozen=True)
class AuditedLabels:
    """The audited AI label of each pair and the judge it came from.

    Attributes
    ----------
    labels : dict of str to str
        pair id -> ``A``, ``B``, ``tie`` or ``tie_inconsistent`` (its judge's orders
        disagree); pairs without any vote are absent.
    judges : dict of str to str
        pair id -> the judge whose label it is: the primary judge where it voted, else
        the best-covered judge that voted on the pair (same keys as ``labels``).
    primary : str
        The primary judge's name; "" in a workspace without AI votes.
    """

    labels: dict[str, str]
    judges: dict[str, str]
    primary: str

    def per_judge(self) -> dict[str, int]:
        """judge -> pairs audited under its label, the primary first, then by count."""
        out: dict[str, int] = defaultdict(int)
        for j in self.judges.values():
            out[j] += 1
        return dict(sorted(out.items(), key=lambda kv: (kv[0] != self.primary, -kv[1], kv[0])))


def audited_labels(ledger: Ledger, primary_judge: str = "", pair_ids: Sequence[str] | None = None) -> AuditedLabels:
    """Each pair's audited AI label and its judge (see :class:`AuditedLabels`).

    ``primary_judge`` empty: the judge the latest iteration recorded, else the judge with
    the most labeled pairs. The fallback ranking counts every pair of the workspace, also
    when ``pair_ids`` asks for a few.
    """
    return audited_of(ledger, read_votes(ledger, pair_ids), primary_judge)


def audited_of(ledger: Ledger, table: VoteTable, primary_judge: str, settlers: Sequence[str] = (), *,
               ties_only: bool = False) -> AuditedLabels:
    """:func:`audited_labels` over votes already read (:func:`read_votes`).

    ``settlers``: escalation judges, strongest first; where one gave a winner, the pair is
    audited under its label (:func:`rlthf_plugin.selection.signals.settle`); ``ties_only``:
    only where the label judge named no winner.
    """
    labels, judge, primary = audited_arrays(ledger, table, primary_judge, settlers, ties_only=ties_only)
    return AuditedLabels({pid: str(lab) for pid, lab in zip(table.pair_ids, labels) if lab},
                         {pid: table.judges[k] for pid, lab, k in zip(table.pair_ids, labels, judge) if lab},
                         primary)


def audited_arrays(ledger: Ledger, table: VoteTable, primary_judge: str, settlers: Sequence[str] = (), *,
                   ties_only: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """:func:`audited_of` as arrays in ``table``'s pair order: ``(labels (N,) str ("" where
    no vote), judge (N,) int index into ``table.judges`` (-1 where none), the primary's name)``."""
    n = len(table.pair_ids)
    if not table.judges:
        return np.full(n, "", dtype="U1"), np.full(n, -1, dtype=np.int64), ""
    if not primary_judge:  # unset: the judge the latest iteration audited, so it does not drift
        recorded = iteration_primary(ledger)
        primary_judge = recorded if recorded in table.judges else ""
    j = resolve_primary(table, primary_judge)
    labels, judge = _audited_labels(table.votes, j, coverage=coverage(table))
    idx = [table.judges.index(name) for name in settlers if name in table.judges and name != table.judges[j]]
    if idx:
        judge = settle(table.votes, judge, idx, ~np.isin(labels, ["A", "B"]) if ties_only else None)
        labels = labels.astype(object)
        for k in idx:
            labels[judge == k] = _primary_labels(table.votes, k)[judge == k]
        labels = labels.astype(str)
    return labels, judge, table.judges[j]


def coverage(table: VoteTable) -> list[int]:
    """(J,) labeled pairs per judge of ``table``, in its judge order: the fallback ranking."""
    return [table.labeled[j] for j in table.judges]


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
    """For ``rlthf status`` and the report: votes per judge (``pairs`` it labeled, ``audited``:
    pairs audited under its label), judge x judge agreement, the primary judge, the pairs
    whose audited label is ``tie_inconsistent``, and the error model's weights of the latest
    signals iteration."""
    return judges_overview(ledger, primary_judge)[0]


def judges_overview(ledger: Ledger, primary_judge: str = "") -> tuple[dict, AuditedLabels]:
    """:func:`judge_summary` and the :class:`AuditedLabels` it was computed from, from one read
    of the votes (``status`` and the report need both)."""
    table = read_votes(ledger)
    if not table.judges:
        return ({"judges": {}, "agreement": {}, "primary_judge": None, "audited_per_judge": {}, "error_model": None},
                AuditedLabels({}, {}, ""))
    audited = audited_of(ledger, table, primary_judge)
    under = audited.per_judge()
    per = {}
    for k, j in enumerate(table.judges):
        v = table.votes[:, k, :]
        per[j] = {"pairs": table.labeled[j], "audited": under.get(j, 0), "votes": int(np.isfinite(v).sum()),
                  "both_orders": int(np.isfinite(v).all(axis=1).sum()),
                  "split_orders": int((np.isfinite(v).all(axis=1) & (v[:, 0] != v[:, 1])).sum())}
    signals = [r for r in reversed(iteration_rows(ledger)) if (r["stats"] or {}).get("strategy") == Strategy.SIGNALS]
    em = {"iteration": signals[0]["id"], **(signals[0]["stats"].get("error_model") or {})} if signals else None
    return ({"judges": per, "agreement": agreement(table), "primary_judge": audited.primary,
             "audited_per_judge": under,
             "inconsistent": sum(1 for x in audited.labels.values() if x == "tie_inconsistent"),
             "error_model": em}, audited)


def top_suspects(ledger: Ledger, top: int) -> list[str]:
    """The ``top`` pairs of the latest iteration most suspect of a wrong AI label and not yet
    labeled by a human: by P(wrong) (signals: the decisions' rank) or by the lowest margin
    (margin-curve)."""
    it = latest_iteration(ledger)
    if it is None:
        return []
    rows = decisions(ledger, it)
    signals = iteration_params(ledger, it).get("strategy", "signals") == "signals"
    labeled = {r.pair_id for r in label_rows(ledger) if r.iteration is not None}

    def suspicion(r: dict) -> float:
        if signals:  # ranked by P(wrong), highest first (a dropped pair stores no reason, its rank it has)
            return -float(r["rank"] if r["rank"] is not None else len(rows))
        return -float(r["margin"] if r["margin"] is not None else 0.0)

    rows = [r for r in rows if r["pair_id"] not in labeled and r["action"] != Action.ASK.value]
    return [r["pair_id"] for r in sorted(rows, key=lambda r: (-suspicion(r), r["pair_id"]))[:top]]


__all__ = ["VOTE_ORDERS", "AuditedLabels", "VoteTable", "add_ai_labels", "answer_times", "agreement", "ai_majority", "audited_arrays", "audited_of",
           "judges_overview",
           "ai_votes", "audited_labels", "count_votes", "coverage", "forget_parse_errors", "iteration_primary",
           "judge_answers", "judge_summary", "read_votes", "resolve_primary", "top_suspects", "unjudged_pair_ids",
           "vote_rows"]

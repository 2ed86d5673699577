"""AI labels from an LLM judge, cached in the ledger so a rerun asks nothing twice.

:func:`label_pairs` runs a judge (:func:`~rlthf_plugin.models.judge.open_judge`) over pairs
in both orders (``ab``, ``ba``), stores each single-order answer in ``ai_labels`` under
(pair id, judge, prompt version, order) as soon as it arrives, and the combined verdict
under order ``both`` when both are in: a flip is ``tie_inconsistent``, an unparsable
answer ``parse_error`` with its raw text. Cached answers are never asked again, so a
killed run resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass, field
from typing import Sequence

from tqdm.auto import tqdm

from ..errors import ConfigError
from ..models.judge import Call, Judge, Reply, estimate_cost
from ..models.judge.prompt import ORDERS, Answer, JudgeTemplate, combine_orders, to_stored_order
from ..pairs import PreferencePair
from ..store import votes as votes_db
from ..store.ledger import Ledger, now


@dataclass
class LabelReport:
    """What one :func:`label_pairs` run did."""

    judge: str
    prompt_version: str
    pairs: int = 0
    #: Calls sent to the judge in this run (single orders).
    asked: int = 0
    #: Single-order answers found in the ledger and not asked again.
    cached: int = 0
    #: Verdicts per label written in this run.
    verdicts: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None


def stored_judge_name(judge_name: str, template: JudgeTemplate, orders: Sequence[str] = ORDERS) -> str:
    """The ``judge`` column a judge's verdicts are stored under: its name, ``[ab]`` / ``[ba]``
    when it was asked one order only, ``/STEM`` for a template other than the packaged
    ``pairwise`` one (another protocol of the same model is another judge)."""
    orders = tuple(orders)
    name = judge_name if orders == ORDERS else f"{judge_name}[{orders[0]}]"
    stem = Path(template.path).stem
    return name if stem == "pairwise" else f"{name}/{stem}"


def pairs_to_label(ledger: Ledger, judge_name: str, version: str, *, relabel: bool = False,
                   limit: int | None = None) -> list[PreferencePair]:
    """Pairs still without this judge's verdict, in id order.

    Pairs that already carry another AI label (imported, or another judge's) are left out
    unless ``relabel``; ``limit`` caps how many pairs are returned.
    """
    return ledger.get_pairs(votes_db.unjudged_pair_ids(ledger, judge_name, version, relabel=relabel, limit=limit))


def cached_answers(ledger: Ledger, judge_name: str, version: str, pair_ids: Sequence[str]) -> dict[tuple[str, str], Answer]:
    """(pair id, order) -> the stored single-order answer (stored order), for these pairs."""
    return {(pid, order): Answer(label, conf)
            for pid, order, label, conf in votes_db.judge_answers(ledger, judge_name, version, ORDERS, pair_ids)}


def label_pairs(ledger: Ledger, judge: Judge, template: JudgeTemplate, *, task: str = "dialogue",
                orders: Sequence[str] = ORDERS, limit: int | None = None, relabel: bool = False,
                max_chars: int | None = None, retry_parse_errors: bool = False,
                progress: bool = True, pair_ids: Sequence[str] | None = None) -> LabelReport:
    """Judge every pair without a verdict of this judge and store the labels in the ledger.

    Parameters
    ----------
    ledger : Ledger
    judge : Judge
        From :func:`open_judge`.
    template : JudgeTemplate
        The prompt; its ``version`` is part of the cache key.
    task : {"dialogue", "summarization"} or another task of the template, default "dialogue"
        Selects the task text and the criteria.
    orders : sequence of {"ab", "ba"}, default ("ab", "ba")
        Both orders (position-bias check) or one. With one order the verdict is stored
        under the judge name ``NAME[ab]`` (or ``[ba]``), so it never passes for a
        two-order verdict.
    limit : int or None, default None
        Label at most this many pairs (in pair-id order).
    relabel : bool, default False
        Also judge pairs that already carry another AI label.
    max_chars : int or None, default None
        Cut the input and each response to this many characters in the prompt.
    retry_parse_errors : bool, default False
        Forget this judge's stored parse errors first, so those calls are asked again.
    progress : bool, default True
        Show a tqdm bar with tokens and the cost estimate.
    pair_ids : sequence of str or None, default None
        Judge only these pairs, whatever other AI labels they carry (escalation: a second
        judge on the most suspect pairs only).

    Returns
    -------
    LabelReport
    """
    import time

    orders = tuple(orders)
    if not orders or any(o not in ORDERS for o in orders) or len(set(orders)) != len(orders):
        raise ValueError(f"orders {orders!r}: give 'ab', 'ba' or both")
    if task not in template.tasks:
        raise ConfigError(f"task {task!r}: the template {template.path} knows {sorted(template.tasks)}")
    name = stored_judge_name(judge.name, template, orders)
    version = template.version
    if retry_parse_errors:
        forget_parse_errors(ledger, name, version)
    pairs = pairs_to_label(ledger, name, version, relabel=relabel or pair_ids is not None, limit=limit)
    if pair_ids is not None:
        wanted = set(pair_ids)
        pairs = [p for p in pairs if p.id in wanted]
    report = LabelReport(judge=name, prompt_version=version, pairs=len(pairs))
    cached = cached_answers(ledger, name, version, [p.id for p in pairs])
    calls = [Call(p, o, template.messages(p, o, task, max_chars=max_chars))
             for p in pairs for o in orders if (p.id, o) not in cached]
    report.cached = sum(1 for p in pairs for o in orders if (p.id, o) in cached)
    answers = dict(cached)
    # Pairs whose answers are all cached still need their verdict written (a kill between
    # the last answer and the verdict).
    ready = [p for p in pairs if all((p.id, o) in answers for o in orders)]
    _store_verdicts(ledger, name, version, orders, ready, answers, report)

    bar = tqdm(total=len(calls), desc=f"judge {name}", unit="call", disable=not progress)
    started = time.perf_counter()

    def on_reply(call: Call, reply: Reply) -> None:
        stored = Answer(to_stored_order(reply.label, call.order), reply.confidence)
        row = _row(call.pair.id, name, version, call.order, stored, reply.raw)
        votes_db.add_ai_labels(ledger, [row])
        answers[(call.pair.id, call.order)] = stored
        report.asked += 1
        report.prompt_tokens += reply.prompt_tokens
        report.completion_tokens += reply.completion_tokens
        if all((call.pair.id, o) in answers for o in orders):
            _store_verdicts(ledger, name, version, orders, [call.pair], answers, report)
        report.cost = estimate_cost(judge.prices, report.prompt_tokens, report.completion_tokens)
        postfix = {"tok_in": report.prompt_tokens, "tok_out": report.completion_tokens}
        if report.cost is not None:
            postfix["cost"] = f"${report.cost:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    try:
        if calls:
            judge.run(calls, on_reply)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    return report


def _row(pair_id: str, judge: str, version: str, order: str, answer: Answer, raw: str | None) -> dict:
    return {"pair_id": pair_id, "judge": judge, "label": answer.label, "confidence": answer.confidence,
            "prompt_version": version, "order": order, "source_key": "", "raw": raw, "created_at": now()}


def _store_verdicts(ledger: Ledger, name: str, version: str, orders: tuple[str, ...],
                    pairs: Sequence[PreferencePair], answers: dict[tuple[str, str], Answer],
                    report: LabelReport) -> None:
    rows = []
    for p in pairs:
        got = [answers[(p.id, o)] for o in orders]
        verdict = combine_orders(*got) if len(got) == 2 else got[0]
        raw = json.dumps({o: a.label for o, a in zip(orders, got)})
        rows.append(_row(p.id, name, version, "both", verdict, raw))
        report.verdicts[verdict.label] = report.verdicts.get(verdict.label, 0) + 1
    votes_db.add_ai_labels(ledger, rows)


def forget_parse_errors(ledger: Ledger, judge_name: str, version: str) -> int:
    """Delete this judge's parse-error answers (and the verdicts built on them); returns how many calls."""
    return votes_db.forget_parse_errors(ledger, judge_name, version, ORDERS)


__all__ = ["LabelReport", "label_pairs", "stored_judge_name", "pairs_to_label", "cached_answers", "forget_parse_errors"]

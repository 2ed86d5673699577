"""Readers for preference data: containers (files, folders, hub names) and row formats.

A container (:mod:`.containers`) yields ``(line, record)`` pairs; a row format turns a
record into a :class:`Row` or raises :class:`RowError` naming the field. Nothing here writes: the
importer validates every row first and writes them in one transaction.

Row formats (auto-detected from a record's keys, or forced with ``--format``):

==============  ==========================================================================
merged          prompt, response_a, response_b, ai_label, human_label / human_votes, ...
trl             prompt, chosen, rejected (strings or chat message lists)
hh              chosen, rejected as full ``\\n\\nHuman: ... \\n\\nAssistant: ...`` dialogues
mtbench         MT-bench human judgments: conversation_a/b, human_winner, gpt4_winner
pandalm         PandaLM testset: instruction, input, response1/2, annotator1..3
pandalm-judge   a PandaLM judge file: idx, <judge>_result (AI labels for pandalm pairs)
llmbar          LLMBar: input, output_1, output_2, gold_label, judges (protocol x order)
llmeval2        LLMEval2: query, response1, response2, human
multi           prompt, responses (a list of texts or {text, model} objects)
==============  ==========================================================================
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from ..pairs import AI_LABELS, NO_MAJORITY, TIE, normalize_label

MTBENCH_TURN1_MARK = "[assistant turn 1 — model-specific, see response]"
#: Which response a judge saw first: ``ab`` (response A) or ``ba``; "" = unknown or combined.
AI_ORDERS = ("ab", "ba")


class Vote(NamedTuple):
    """One AI vote of a row: the judge, its label in the row's A/B terms, a unique key, and
    the order the judge saw the responses in (``ab``, ``ba`` or "" when unknown)."""

    judge: str
    label: str
    key: str
    order: str = ""
    confidence: float | None = None


class RowError(ValueError):
    """A record that cannot be read; ``field`` names the culprit (None for the whole row)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class Row:
    """One parsed record.

    A pair row has ``response_a``/``response_b``; a multi-response row has ``responses``;
    a judge row has only ``ref_key`` and ``ai_labels`` (labels for a pair imported earlier).
    ``ai_labels`` holds :class:`Vote` (judge, label, key, order) and ``human_votes``
    (annotator, label, key): the key makes each vote unique, so re-importing adds nothing
    twice. ``pair_level_humans``: the human votes describe the pair, so another row of the
    same pair (e.g. a merged row repeated for another judge) carries the same votes again.
    """

    source: str
    source_key: str
    prompt: str = ""
    response_a: str | None = None
    response_b: str | None = None
    responses: list[tuple[str, str | None]] = field(default_factory=list)
    models: tuple[str | None, str | None] = (None, None)
    metadata: dict[str, Any] = field(default_factory=dict)
    ai_labels: list[Vote] = field(default_factory=list)
    human_votes: list[tuple[str, str, str]] = field(default_factory=list)
    ref_key: str | None = None
    pair_level_humans: bool = False
    #: Where the record was read (set by the importer, for error messages).
    file: str = ""
    line: int | None = None


# ---------------------------------------------------------------------------------------
# field helpers


def _text(record: dict, name: str, *, allow_empty: bool = True) -> str:
    if name not in record:
        raise RowError(name, "missing")
    value = record[name]
    if not isinstance(value, str):
        raise RowError(name, f"expected a string, got {type(value).__name__} {value!r:.40}")
    if not allow_empty and not value.strip():
        raise RowError(name, "is empty")
    return value


def _distinct(a: str, b: str, fields: tuple[str, str]) -> None:
    if a == b:
        raise RowError(fields[1], f"identical to '{fields[0]}': nothing to prefer")


#: json.dumps(record, sort_keys=True, default=str), without building an encoder a row.
_KEY_JSON = json.JSONEncoder(sort_keys=True, default=str)


def _row_key(source: str, record: dict, *id_fields: str) -> str:
    for name in id_fields:
        value = record.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
            return f"{source}:{value}"
    digest = hashlib.sha256(_KEY_JSON.encode(record).encode()).hexdigest()[:24]
    return f"{source}:sha256-{digest}"


def _extra(record: dict, used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in used}


def _votes(value: Any, name: str) -> list[str]:
    if isinstance(value, str):  # some exports keep the list as its Python repr
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as e:
            raise RowError(name, f"not a list of labels: {value!r:.40}") from e
    if not isinstance(value, list):
        raise RowError(name, f"expected a list of labels, got {type(value).__name__}")
    try:
        return [normalize_label(v) for v in value]
    except ValueError as e:
        raise RowError(name, str(e)) from e


def _label(value: Any, name: str, allowed=(("A", "B", TIE))) -> str:
    try:
        return normalize_label(value, allowed=allowed)
    except ValueError as e:
        raise RowError(name, str(e)) from e


# ---------------------------------------------------------------------------------------
# row formats


def parse_merged(record: dict, *, source: str, judge: str) -> Row:
    prompt = _text(record, "prompt", )
    a, b = _text(record, "response_a"), _text(record, "response_b")
    _distinct(a, b, ("response_a", "response_b"))
    src = str(record.get("source") or source)
    key = _row_key(src, record, "id")
    row = Row(src, key, prompt, a, b, models=(record.get("model_a"), record.get("model_b")),
              metadata=_extra(record, {"prompt", "response_a", "response_b", "human_votes",
                                       "human_label", "ai_label", "ai_judge", "ai_order"}),
              pair_level_humans=True)
    order = record.get("ai_order")
    order = "" if order in (None, "") else order
    if order not in ("", *AI_ORDERS):
        raise RowError("ai_order", f"expected 'ab' or 'ba' (which response the judge saw first), got {order!r:.40}")
    if record.get("ai_label") not in (None, ""):
        label = _label(record["ai_label"], "ai_label", AI_LABELS)
        if order and label == "tie_inconsistent":
            raise RowError("ai_label", "'tie_inconsistent' needs both orders; a row with ai_order is one order")
        row.ai_labels.append(Vote(str(record.get("ai_judge") or judge), label, key, order))
    if record.get("human_votes") not in (None, "", []):
        votes = _votes(record["human_votes"], "human_votes")
    elif record.get("human_label") not in (None, "", NO_MAJORITY):
        votes = [_label(record["human_label"], "human_label")]
    else:
        votes = []
    row.human_votes = [(f"{key}#annotator{i}", v, f"{key}#vote{i}") for i, v in enumerate(votes)]
    return row


def _message_text(value: Any, name: str) -> str:
    """A response given as a string or as a chat message list (the last message's content)."""
    if isinstance(value, list):
        if not value or not isinstance(value[-1], dict) or not isinstance(value[-1].get("content"), str):
            raise RowError(name, "expected a string or a list of {role, content} messages")
        return value[-1]["content"]
    if not isinstance(value, str):
        raise RowError(name, f"expected a string, got {type(value).__name__}")
    return value


def _render_chat(messages: list[dict]) -> str:
    return "\n\n".join(f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}" for m in messages)


def parse_trl(record: dict, *, source: str, judge: str, label_source: str = "human") -> Row:
    if "prompt" not in record:
        raise RowError("prompt", "missing")
    prompt = record["prompt"]
    if isinstance(prompt, list):
        if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
            raise RowError("prompt", "expected a string or a list of {role, content} messages")
        prompt = _render_chat(prompt) if len(prompt) > 1 else prompt[0]["content"]
    elif not isinstance(prompt, str):
        raise RowError("prompt", f"expected a string, got {type(prompt).__name__}")
    if "chosen" not in record or "rejected" not in record:
        raise RowError("chosen" if "chosen" not in record else "rejected", "missing")
    chosen, rejected = _message_text(record["chosen"], "chosen"), _message_text(record["rejected"], "rejected")
    _distinct(chosen, rejected, ("chosen", "rejected"))
    key = _row_key(source, record, "id")
    row = Row(source, key, prompt, chosen, rejected,
              metadata=_extra(record, {"prompt", "chosen", "rejected"}))
    if label_source == "ai":
        row.ai_labels.append(Vote(judge, "A", key))
    else:
        row.human_votes.append((f"{key}#annotator0", "A", f"{key}#vote0"))
    return row


HH_ASSISTANT = "\n\nAssistant:"


def split_hh(dialogue: str, name: str) -> tuple[str, str]:
    """Split an HH-RLHF dialogue into (prompt up to the last assistant turn, final response)."""
    cut = dialogue.rfind(HH_ASSISTANT)
    if cut < 0:
        raise RowError(name, "no '\\n\\nAssistant:' turn in the dialogue")
    return dialogue[:cut].strip(), dialogue[cut + len(HH_ASSISTANT):].strip()


def parse_hh(record: dict, *, source: str, judge: str, label_source: str = "human") -> Row:
    chosen, rejected = _text(record, "chosen"), _text(record, "rejected")
    p1, r1 = split_hh(chosen, "chosen")
    p2, r2 = split_hh(rejected, "rejected")
    if p1 != p2:
        raise RowError("rejected", "the dialogue before the last assistant turn differs from 'chosen'")
    if not p1:
        raise RowError("chosen", "empty prompt before the last assistant turn")
    return parse_trl({**_extra(record, {"chosen", "rejected"}), "prompt": p1, "chosen": r1, "rejected": r2},
                     source=source, judge=judge, label_source=label_source)


def _mtbench_side(conv: Any, name: str, turn: int) -> tuple[str, str]:
    if isinstance(conv, str):
        try:
            conv = ast.literal_eval(conv)
        except (ValueError, SyntaxError) as e:
            raise RowError(name, "not a conversation list") from e
    if not isinstance(conv, list) or len(conv) < 2 * turn:
        raise RowError(name, f"expected {2 * turn} messages for turn {turn}")
    for i, m in enumerate(conv[:2 * turn]):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise RowError(name, f"message {i} has no string content")
    if turn == 1:
        return conv[0]["content"], conv[1]["content"]
    prompt = f"{conv[0]['content']}\n\n{MTBENCH_TURN1_MARK}\n\n{conv[2]['content']}"
    response = f"[turn 1 answer]\n{conv[1]['content']}\n\n[turn 2 answer]\n{conv[3]['content']}"
    return prompt, response


def parse_mtbench(record: dict, *, source: str, judge: str) -> Row:
    turn = record.get("turn")
    if turn not in (1, 2, "1", "2"):
        raise RowError("turn", f"expected 1 or 2, got {turn!r}")
    turn = int(turn)
    pa, ra = _mtbench_side(record.get("conversation_a"), "conversation_a", turn)
    pb, rb = _mtbench_side(record.get("conversation_b"), "conversation_b", turn)
    if pa != pb:
        raise RowError("conversation_b", "the user turns differ from conversation_a")
    _distinct(ra, rb, ("conversation_a", "conversation_b"))
    src = "mt_bench_human_judgments"
    pair_key = f"{src}:mtb-{record.get('question_id')}-t{turn}-{record.get('model_a')}-vs-{record.get('model_b')}"
    row = Row(src, pair_key, pa, ra, rb, models=(record.get("model_a"), record.get("model_b")),
              metadata=_extra(record, {"conversation_a", "conversation_b", "human_winner", "gpt4_winner", "human_judge"}))
    if record.get("gpt4_winner") not in (None, ""):
        # The GPT-4 verdict repeats on each human-vote row of a pair: one vote per pair.
        row.ai_labels.append(Vote("gpt-4 (MT-bench pair-v2, both orders)",
                                  _label(record["gpt4_winner"], "gpt4_winner", AI_LABELS), pair_key))
    if record.get("human_winner") not in (None, ""):
        who = str(record.get("human_judge") or "unknown")
        row.human_votes.append((who, _label(record["human_winner"], "human_winner"), f"{pair_key}#{who}"))
    return row


def _pandalm_prompt(record: dict) -> str:
    instruction = _text(record, "instruction", )
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise RowError("input", f"expected a string, got {type(extra).__name__}")
    return f"{instruction}\n\n{extra}" if extra else instruction


def parse_pandalm(record: dict, *, source: str, judge: str) -> Row:
    prompt = _pandalm_prompt(record)
    a, b = _text(record, "response1"), _text(record, "response2")
    _distinct(a, b, ("response1", "response2"))
    if "idx" not in record:
        raise RowError("idx", "missing")
    key = f"PandaLM_testset_v1:panda-{record['idx']}"
    models = str(record.get("cmp_key", "")).split("_", 1) + [None, None]
    row = Row("PandaLM_testset_v1", key, prompt, a, b, models=(models[0] or None, models[1] or None),
              metadata=_extra(record, {"instruction", "input", "response1", "response2",
                                       "annotator1", "annotator2", "annotator3"}))
    for i in (1, 2, 3):
        name = f"annotator{i}"
        if record.get(name) not in (None, ""):
            row.human_votes.append((f"pandalm-{name}", _label(record[name], name), f"{key}#{name}"))
    return row


def parse_pandalm_judge(record: dict, *, source: str, judge: str) -> Row:
    if "idx" not in record:
        raise RowError("idx", "missing")
    results = [k for k in record if k.endswith("_result")]
    if not results:
        raise RowError(None, "no '<judge>_result' field")
    name = results[0]
    judge_name = {"gpt_result": "gpt-3.5-turbo (PandaLM release)", "pandalm_result": "PandaLM-7B"}.get(
        name, name[: -len("_result")])
    key = f"PandaLM_testset_v1:panda-{record['idx']}"
    label = _label(record[name], name, AI_LABELS)
    return Row("PandaLM_testset_v1", key, ref_key=key, ai_labels=[Vote(judge_name, label, f"{key}@{judge_name}")],
               metadata=_extra(record, {"idx", name}))


LLMBAR_ORDERS = {"order_1_2": "ab", "order_2_1": "ba"}


def parse_llmbar(record: dict, *, source: str, judge: str) -> Row:
    """LLMBar (princeton-nlp/LLMBar): ``gold_label`` is the human label; each judge protocol's
    verdict per order (``order_1_2``: output_1 shown first) is one vote, in output_1/2 terms."""
    prompt = _text(record, "input")
    a, b = _text(record, "output_1"), _text(record, "output_2")
    _distinct(a, b, ("output_1", "output_2"))
    subset = str(record.get("subset") or "LLMBar")
    src = f"LLMBar:{subset}"
    key = _row_key(src, record, "idx")
    row = Row(src, key, prompt, a, b, metadata=_extra(record, {"input", "output_1", "output_2", "gold_label", "judges"}))
    gold = record.get("gold_label")
    if gold not in (None, ""):
        if str(gold) not in ("1", "2"):
            raise RowError("gold_label", f"expected 1 or 2, got {gold!r:.40}")
        row.human_votes.append((f"{key}#gold", "A" if str(gold) == "1" else "B", f"{key}#gold"))
    judges = record.get("judges") or {}
    if isinstance(judges, str):
        try:
            judges = ast.literal_eval(judges)
        except (ValueError, SyntaxError) as e:
            raise RowError("judges", "not a mapping of judge -> {order_1_2, order_2_1}") from e
    if not isinstance(judges, dict):
        raise RowError("judges", f"expected a mapping of judge -> verdicts, got {type(judges).__name__}")
    for name, verdicts in judges.items():
        if not isinstance(verdicts, dict):
            raise RowError(f"judges.{name}", "expected {order_1_2, order_2_1}")
        for field_name, order in LLMBAR_ORDERS.items():
            v = verdicts.get(field_name)
            label = {"1": "A", "2": "B"}.get(str(v), "parse_error")
            if v is None and field_name not in verdicts:
                continue
            row.ai_labels.append(Vote(str(name), label, key, order))
    return row


def parse_llmeval2(record: dict, *, source: str, judge: str) -> Row:
    prompt = _text(record, "query", )
    a, b = _text(record, "response1"), _text(record, "response2")
    _distinct(a, b, ("response1", "response2"))
    src = f"LLMEval2:{record.get('dataset', '')}".rstrip(":")
    key = _row_key(src, record)
    row = Row(src, key, prompt, a, b, metadata=_extra(record, {"query", "response1", "response2", "human"}))
    if record.get("human") not in (None, ""):
        row.human_votes.append((f"{key}#annotator0", _label(record["human"], "human"), f"{key}#vote0"))
    return row


def parse_multi(record: dict, *, source: str, judge: str) -> Row:
    prompt = _text(record, "prompt", )
    items = record.get("responses")
    if not isinstance(items, list) or not items:
        raise RowError("responses", "expected a non-empty list")
    out: list[tuple[str, str | None]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            text, model = item.get("text", item.get("response")), item.get("model")
        else:
            text, model = item, None
        if not isinstance(text, str):
            raise RowError(f"responses[{i}]", f"expected a string, got {type(text).__name__}")
        out.append((text, None if model is None else str(model)))
    src = str(record.get("source") or source)
    return Row(src, _row_key(src, record, "id"), prompt, responses=out,
               metadata=_extra(record, {"prompt", "responses"}))


ROW_FORMATS: dict[str, Callable[..., Row]] = {
    "merged": parse_merged,
    "trl": parse_trl,
    "hh": parse_hh,
    "mtbench": parse_mtbench,
    "pandalm": parse_pandalm,
    "pandalm-judge": parse_pandalm_judge,
    "llmbar": parse_llmbar,
    "llmeval2": parse_llmeval2,
    "multi": parse_multi,
}


def detect_format(record: dict) -> str | None:
    """The row format a record's keys point to, or None."""
    keys = set(record)
    if {"output_1", "output_2", "gold_label"} <= keys:
        return "llmbar"
    if {"response_a", "response_b"} <= keys:
        return "merged"
    if {"conversation_a", "conversation_b"} <= keys:
        return "mtbench"
    if {"instruction", "response1", "response2"} <= keys:
        return "pandalm"
    if "idx" in keys and any(k.endswith("_result") for k in keys):
        return "pandalm-judge"
    if {"query", "response1", "response2"} <= keys:
        return "llmeval2"
    if {"prompt", "responses"} <= keys:
        return "multi"
    if {"chosen", "rejected"} <= keys:
        return "trl" if "prompt" in keys else "hh"
    return None

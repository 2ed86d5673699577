"""Preference pairs, labels and stable ids.

A pair is (prompt, response_a, response_b). Its id depends on the prompt and the
*unordered* two responses, so the same comparison gets the same id on every machine and
in every run, whichever order a file lists the responses in. The ledger keeps the order
it first saw; labels given in the other order are swapped on the way in.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_string
from typing import Any, Iterable

# Label values. A and B refer to the pair's stored order.
A = "A"
B = "B"
TIE = "tie"
#: The judge preferred different responses when the order was swapped (position bias).
TIE_INCONSISTENT = "tie_inconsistent"
#: The judge's answer could not be parsed; stored with its raw text, never guessed.
PARSE_ERROR = "parse_error"
#: An annotator skipped or cancelled the task: kept, but it is not a vote.
SKIP = "skip"
#: Human votes without a majority (aggregate only).
NO_MAJORITY = "no_majority"

WINNERS = (A, B)
AI_LABELS = (A, B, TIE, TIE_INCONSISTENT, PARSE_ERROR)
HUMAN_LABELS = (A, B, TIE, SKIP)

# Spellings found in real files, mapped to the label values above.
_SYNONYMS = {
    "a": A, "model_a": A, "model1": A, "1": A, "response a": A, "response_a": A,
    "b": B, "model_b": B, "model2": B, "2": B, "response b": B, "response_b": B,
    "tie": TIE, "0": TIE, "draw": TIE, "tie (bothbad)": TIE, "tie (both bad)": TIE,
    "tie_inconsistent": TIE_INCONSISTENT, "tie (inconsistent)": TIE_INCONSISTENT,
    "inconsistent": TIE_INCONSISTENT,
    "parse_error": PARSE_ERROR, "error": PARSE_ERROR, "garbage": PARSE_ERROR,
    "skip": SKIP, "skipped": SKIP, "cancelled": SKIP, "canceled": SKIP,
    "no_majority": NO_MAJORITY,
}


def normalize_label(value: Any, *, allowed: Iterable[str] = (A, B, TIE)) -> str:
    """Map a label as written in a file (``"model_a"``, ``"1"``, ``"TIE"``...) to a label value.

    Parameters
    ----------
    value : str or int
        The label as found.
    allowed : iterable of str, default (A, B, TIE)
        The label values acceptable here.

    Raises
    ------
    ValueError
        If the value is not a known spelling of an allowed label; the message lists them.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"label {value!r} is not one of {sorted(set(allowed))}")
    key = str(value).strip().lower()
    label = _SYNONYMS.get(key)
    allowed = tuple(allowed)
    if label is None or label not in allowed:
        raise ValueError(f"unknown label {value!r}; expected one of {list(allowed)}")
    return label


def swap_label(label: str) -> str:
    """The same judgement for the pair with its two responses swapped."""
    return {A: B, B: A}.get(label, label)


def text_hash(text: str) -> str:
    """A stable 32-hex-digit hash of a text (sha256, UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def pair_id(prompt: str, response_a: str, response_b: str) -> str:
    """The stable id of a pair: the prompt and the *unordered* two responses.

    >>> pair_id("p", "x", "y") == pair_id("p", "y", "x")
    True
    """
    first, second = (response_b, response_a) if response_b < response_a else (response_a, response_b)
    # json.dumps([prompt, sorted([a, b])], ensure_ascii=False), written out: the same text,
    # without building an encoder per call (the import hashes every row).
    payload = f"[{_json_string(prompt)}, [{_json_string(first)}, {_json_string(second)}]]"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def prompt_id(prompt: str) -> str:
    """The stable id of a prompt (groups a prompt's responses for REAL)."""
    return text_hash("prompt\x00" + prompt)


def response_id(prompt: str, response: str) -> str:
    """The stable id of one response to one prompt."""
    return text_hash(f"[{_json_string(prompt)}, {_json_string(response)}]")  # json.dumps([prompt, response])


@dataclass(frozen=True)
class PreferencePair:
    """One comparison as stored in the ledger.

    ``metadata`` holds the fields of the source row that the plugin does not interpret
    (model names, category, source id...).
    """

    id: str
    prompt: str
    response_a: str
    response_b: str
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, prompt: str, response_a: str, response_b: str, **kwargs: Any) -> "PreferencePair":
        return cls(pair_id(prompt, response_a, response_b), prompt, response_a, response_b, **kwargs)

    def chosen_rejected(self, label: str) -> tuple[str, str]:
        """(chosen, rejected) texts for a winning label A or B."""
        if label == A:
            return self.response_a, self.response_b
        if label == B:
            return self.response_b, self.response_a
        raise ValueError(f"label {label!r} names no winner")


@dataclass(frozen=True)
class Majority:
    """The resolved label of several votes.

    ``label`` is A, B, tie, or no_majority; ``agreement`` is the share of votes for it
    (0.0 when there are no votes); ``votes`` counts the votes that took part.
    """

    label: str | None
    agreement: float
    votes: int


def majority(labels: Iterable[str]) -> Majority:
    """Resolve votes by strict plurality; skips and parse errors are not votes.

    ``tie_inconsistent`` counts as a tie. Two labels with the same top count give
    ``no_majority``.
    """
    counted = Counter(TIE if v == TIE_INCONSISTENT else v for v in labels if v in (A, B, TIE, TIE_INCONSISTENT))
    n = sum(counted.values())
    if n == 0:
        return Majority(None, 0.0, 0)
    (top, k), *rest = counted.most_common()
    if rest and rest[0][1] == k:
        return Majority(NO_MAJORITY, k / n, n)
    return Majority(top, k / n, n)

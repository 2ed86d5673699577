"""Field mapping: which of a project's or dataset's own names hold the prompt, the two
responses and the human answer, and how that answer reads as A / B / tie.

Pure translation, shared by both adapters: ``--map prompt=instruction,response_a=response1,
response_b=response2,label=ranking`` (or ``map = "..."`` in ``[label_studio]`` /
``[argilla]``) parses into a :class:`FieldMap`; the answer rules below turn a platform's
value into our label. They are documented in the README ("Using an existing project or
dataset"):

- Label Studio ``<Choices>``: a choice whose value or alias reads A / B / tie
  ("A", "Response A", "left", "tie", "equal", ...).
- Label Studio ``<Pairwise>``: ``selected: left`` is the first object of ``toName``,
  which must show ``response_a``; ``right`` the second (``response_b``). It has no tie.
- Argilla ``LabelQuestion``: an option whose value reads A / B / tie as above.
- Argilla ``RankingQuestion``: two options, one per response (an option named like the
  response's field, else the first option is A); the better rank wins, equal ranks tie.
- Argilla ``RatingQuestion``: a preference scale from "A is better" (lowest value) to
  "B is better" (highest); values below the middle of the scale are A, above are B,
  the middle value of an odd scale is a tie.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..pairs import A, B, TIE

#: Our names, in the order ``--map`` lists them.
KEYS = ("prompt", "response_a", "response_b", "label", "reason")


@dataclass(frozen=True)
class FieldMap:
    """The platform's names for our fields. ``label`` is the control (Label Studio) or
    question (Argilla) that holds the answer; empty = the platform default. ``reason`` is
    the data key (Label Studio) or text field (Argilla) that shows annotators why a pair
    was asked; empty = ``reason`` (Label Studio) or ``why`` (Argilla)."""

    prompt: str = "prompt"
    response_a: str = "response_a"
    response_b: str = "response_b"
    label: str = ""
    reason: str = ""

    @property
    def texts(self) -> dict[str, str]:
        """Our text field -> the platform's name."""
        return {"prompt": self.prompt, "response_a": self.response_a, "response_b": self.response_b}

    def to_text(self) -> str:
        """The ``--map`` form, e.g. ``prompt=q,response_a=x,response_b=y,label=pw``."""
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name))

    @property
    def is_default(self) -> bool:
        return self == FieldMap()


def parse_map(text: str | Mapping[str, str] | None, *, where: str = "--map") -> FieldMap:
    """``"prompt=q,response_a=x,response_b=y,label=pw"`` (or a mapping) as a FieldMap.

    Keys left out keep their default. Every problem is reported at once.
    """
    if text is None or text == "":
        return FieldMap()
    if isinstance(text, Mapping):
        items = [(str(k).strip(), str(v).strip()) for k, v in text.items()]
    else:
        items, problems = [], []
        for part in str(text).split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                problems.append(f"'{part.strip()}' is not KEY=NAME")
            items.append((key.strip(), value.strip()))
        if problems:
            raise ConfigError(f"{where}: {'; '.join(problems)} (keys: {', '.join(KEYS)})")
    problems, seen = [], {}
    for key, value in items:
        if key not in KEYS:
            problems.append(f"unknown key '{key}'")
        elif not value:
            problems.append(f"'{key}' has no name")
        elif key in seen:
            problems.append(f"'{key}' given twice")
        else:
            seen[key] = value
    texts = [seen.get(k, FieldMap.__dataclass_fields__[k].default) for k in KEYS[:3]]
    if len(set(texts)) < 3:
        problems.append(f"prompt, response_a and response_b must be three different names, got {texts}")
    if problems:
        raise ConfigError(f"{where}: {'; '.join(problems)} (keys: {', '.join(KEYS)})")
    return FieldMap(**seen)


def choice_label(value: Any) -> str | None:
    """A choice's value or alias read as A, B or tie; None when it is none of them."""
    low = str(value).strip().lower()
    if low in ("a", "response a", "response_a", "left", "a is better"):
        return A
    if low in ("b", "response b", "response_b", "right", "b is better"):
        return B
    if low in ("tie", "equal", "same", "draw", "both", "neither"):
        return TIE
    return None


def pairwise_label(selected: Any) -> str | None:
    """Label Studio ``<Pairwise>``: ``left`` is response A, ``right`` response B."""
    return {"left": A, "right": B}.get(str(selected))


def pairwise_value(label: str) -> str | None:
    """Our label as a ``<Pairwise>`` selection (a tie has none)."""
    return {A: "left", B: "right"}.get(label)


def ranking_options(options: Sequence[str], fm: FieldMap) -> tuple[str, str]:
    """``(option of A, option of B)`` of a two-option ranking question.

    An option named like the response's field (or "a"/"b") is that response; otherwise
    the first option is A and the second B.
    """
    if len(options) != 2:
        raise ValueError(f"a ranking question needs exactly two options (one per response), got {list(options)}")
    by_label = {}
    for opt in options:
        low = str(opt).lower()
        if low in (fm.response_a.lower(), "a", "response_a", "response a"):
            by_label[A] = opt
        elif low in (fm.response_b.lower(), "b", "response_b", "response b"):
            by_label[B] = opt
    if len(by_label) == 2:
        return by_label[A], by_label[B]
    return options[0], options[1]


def ranking_label(value: Sequence[Any], options: tuple[str, str]) -> str | None:
    """A ranking as A / B / tie: a response's ``[{"value": opt, "rank": r}, ...]`` (rank 1
    is best; equal ranks tie) or a suggestion's options in order, best first."""
    ranks = {}
    for i, v in enumerate(value or []):
        if isinstance(v, Mapping):
            ranks[str(v.get("value"))] = v.get("rank")
        else:
            ranks[str(v)] = i + 1
    ra, rb = ranks.get(options[0]), ranks.get(options[1])
    if ra is None or rb is None:
        return None
    return A if ra < rb else B if rb < ra else TIE


def ranking_value(label: str, options: tuple[str, str]) -> list[str] | None:
    """Our label as a ranking suggestion: the options best first (a suggestion cannot tie)."""
    return {A: [options[0], options[1]], B: [options[1], options[0]]}.get(label)


def rating_label(value: Any, scale: Sequence[int]) -> str | None:
    """A rating on a preference scale: below the middle A, above B, the middle a tie."""
    if value is None or not scale:
        return None
    middle = (min(scale) + max(scale)) / 2
    v = float(value)
    return A if v < middle else B if v > middle else TIE


def rating_value(label: str, scale: Sequence[int]) -> int | None:
    """Our label as a rating: the low end (A), the high end (B), the middle (tie, odd scales)."""
    if label == A:
        return min(scale)
    if label == B:
        return max(scale)
    middle = (min(scale) + max(scale)) / 2
    return int(middle) if middle in scale else None


__all__ = ["FieldMap", "KEYS", "parse_map", "choice_label", "pairwise_label", "pairwise_value", "ranking_options",
           "ranking_label", "ranking_value", "rating_label", "rating_value"]

"""A judge that answers from verdicts recorded elsewhere: ``recorded:FILE[#JUDGE]``.

Teams that judge offline (a batch API, another team's judge run) keep the verdicts in a
file; this judge replays them, so ``label-ai`` and the loop's escalation
(:mod:`rlthf_plugin.loop.escalation`) treat them like any other judge, cached in the
ledger. The benchmark uses it to reveal a second judge's verdict only for the pairs the
loop escalates, counting each call (:attr:`RecordedJudge.calls`).

FILE is in the merged import format, one JSON object a line:

=============  ==========================================================================
field          meaning
=============  ==========================================================================
``prompt``     the prompt of the pair
``response_a`` the first response, as this row lists it
``response_b`` the second response, as this row lists it
``ai_label``   the judge's verdict in the row's own terms: ``A`` (= this row's
               ``response_a``), ``B``, ``tie`` or ``parse_error``
``ai_order``   the order the judge was shown: ``ab`` (this row's ``response_a`` first) or
               ``ba``
``ai_judge``   optional: the judge's name (several judges may share a file; pick one with
               ``#JUDGE``)
=============  ==========================================================================

The judge's name is ``#JUDGE`` when given, else the one ``ai_judge`` of the file, else the
file's stem. The whole file is read and checked when the judge is opened: a malformed line
is a one-line :class:`~rlthf_plugin.errors.InvalidInputError` naming file and line. A call
the file has no verdict for is a :class:`~rlthf_plugin.errors.JudgeError` raised before
any call of the batch is answered, so nothing is half written.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ...errors import ConfigError, InputProblem, InvalidInputError, JudgeError
from ...pairs import A, B, PARSE_ERROR, TIE, pair_id, text_hash
from .base import Call, Reply

#: Labels a recorded single-order verdict may carry.
RECORDED_LABELS = (A, B, TIE, PARSE_ERROR)
RECORDED_ORDERS = ("ab", "ba")


def _bad(path: Path, line: int, field_name: str | None, message: str) -> InvalidInputError:
    err = InvalidInputError([InputProblem(str(path), line, field_name, message)])
    err.message = str(err.problems[0])  # one line: file:line: field: what
    return err


def parse_spec(spec: str) -> tuple[Path, str | None]:
    """``recorded:FILE[#JUDGE]`` (or ``FILE[#JUDGE]``) -> (path, judge or None)."""
    body = spec.split(":", 1)[1] if spec.startswith("recorded:") else spec
    path, _, judge = body.partition("#")
    if not path:
        raise ConfigError(f"--judge {spec!r}: expected 'recorded:FILE' or 'recorded:FILE#JUDGE'")
    return Path(path), (judge or None)


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _str_field(row: dict, name: str, path: Path, line: int) -> str:
    v = row.get(name)
    if not isinstance(v, str):
        raise _bad(path, line, name, "missing" if v is None else f"expected a string, got {type(v).__name__}")
    return v


@dataclass
class RecordedJudge:
    """Verdicts read from a file (see the module docstring); ``calls`` counts the answers given."""

    path: Path
    judge: str | None = None
    prices: tuple[float, float] | None = None
    calls: int = 0
    #: (pair id, text hash of the response shown first) -> (label in shown order, line).
    _verdicts: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict, repr=False)
    _name: str = ""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise ConfigError(f"recorded judge: no file {self.path}")
        names: set[str] = set()
        with _open(self.path) as f:
            for line, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    raise _bad(self.path, line, None, f"not a JSON object ({e.msg})") from None
                if not isinstance(row, dict):
                    raise _bad(self.path, line, None, "not a JSON object")
                judge = row.get("ai_judge")
                if judge is not None and not isinstance(judge, str):
                    raise _bad(self.path, line, "ai_judge", "expected a string")
                if self.judge is not None and judge != self.judge:
                    continue
                if judge:
                    names.add(judge)
                prompt, ra, rb = (_str_field(row, k, self.path, line) for k in ("prompt", "response_a", "response_b"))
                label, order = row.get("ai_label"), row.get("ai_order")
                if label not in RECORDED_LABELS:
                    raise _bad(self.path, line, "ai_label", f"{label!r} is not one of {', '.join(RECORDED_LABELS)}")
                if order not in RECORDED_ORDERS:
                    raise _bad(self.path, line, "ai_order", f"{order!r} is not 'ab' or 'ba'")
                first, second = (ra, rb) if order == "ab" else (rb, ra)
                # The label in the order shown: A = the response shown first.
                shown = label if label in (TIE, PARSE_ERROR) else ("A" if (label == A) == (order == "ab") else "B")
                key = (pair_id(prompt, first, second), text_hash(first))
                if key in self._verdicts and self._verdicts[key][0] != shown:
                    raise _bad(self.path, line, "ai_label",
                               f"contradicts line {self._verdicts[key][1]} (the same pair and order)")
                self._verdicts[key] = (shown, line)
        if self.judge is None and len(names) > 1:
            raise ConfigError(f"recorded judge {self.path}: the file holds judges {sorted(names)}; "
                              f"pick one with recorded:{self.path}#JUDGE")
        if self.judge is not None and not self._verdicts:
            raise ConfigError(f"recorded judge {self.path}: no verdict of judge {self.judge!r}")
        self._name = self.judge or (names.pop() if names else self.path.name.split(".")[0])

    @property
    def name(self) -> str:
        return self._name

    def __len__(self) -> int:
        return len(self._verdicts)

    def verdict(self, call: Call) -> tuple[str, int] | None:
        """(label in the order shown, line) for this call, None when the file has none."""
        p = call.pair
        first = p.response_a if call.order == "ab" else p.response_b
        return self._verdicts.get((pair_id(p.prompt, p.response_a, p.response_b), text_hash(first)))

    def run(self, calls: Sequence[Call], on_reply: Callable[[Call, Reply], None]) -> None:
        """Answer every call from the file; raises before answering any when one is missing."""
        found = [self.verdict(c) for c in calls]
        missing = [c for c, v in zip(calls, found) if v is None]
        if missing:
            c = missing[0]
            raise JudgeError(f"recorded judge {self.path}: no verdict for pair {c.pair.id} in order {c.order}"
                             + (f" (and {len(missing) - 1} more call(s))" if len(missing) > 1 else "")
                             + "; nothing was asked")
        for c, (label, line) in zip(calls, found):
            self.calls += 1
            on_reply(c, Reply(label, f"{self.path.name}:{line}"))


__all__ = ["RECORDED_LABELS", "RecordedJudge", "parse_spec"]

"""The judge's prompt: an editable template file, its version hash, and answer parsing.

The template (``templates/judge/pairwise.toml``) holds the paper's prompt: a system line,
then TASK, CRITERIA, INPUT, Response A, Response B, INSTRUCTIONS, with the task and the
criteria per task type (``dialogue``: helpfulness, honesty, harmlessness;
``summarization``: accuracy, coverage, conciseness, coherence). Its *prompt version* is a
hash of the file's bytes: every AI label stores it, so an edited prompt starts a new cache.

A pair is judged in two *orders*: ``ab`` shows the stored response A first, ``ba`` shows
the stored response B first. Answers are always mapped back to the stored order, and
:func:`combine_orders` turns the two into one verdict, where a flip is a tie
(``tie_inconsistent``: position bias, not a preference).
"""

from __future__ import annotations

import hashlib
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ...errors import ConfigError
from ...pairs import A, B, PARSE_ERROR, TIE, TIE_INCONSISTENT, PreferencePair, swap_label

#: The template shipped with the package.
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "judge" / "pairwise.toml"

#: The two presentation orders: stored order, and swapped.
ORDERS = ("ab", "ba")

_FIELDS = {"task", "criteria", "input", "response_a", "response_b", "instructions"}
_REQUIRED_KEYS = ("system", "user", "instructions", "tasks")


@dataclass(frozen=True)
class Answer:
    """One parsed judge answer, in the order it was *shown* (not yet mapped back).

    ``label`` is ``A``, ``B``, ``tie`` or ``parse_error``; ``confidence`` is the judge's
    probability of that label when it gave one (log-probs), else None.
    """

    label: str
    confidence: float | None = None


@dataclass(frozen=True)
class JudgeTemplate:
    """A loaded prompt template. Build with :func:`load_template`."""

    path: str
    version: str
    system: str
    user: str
    instructions: str
    tasks: dict[str, dict[str, str]]
    score_prefix: str
    choices: tuple[str, str]

    def messages(self, pair: PreferencePair, order: str, task: str, *, max_chars: int | None = None) -> list[dict]:
        """The chat messages that ask for ``pair`` shown in ``order`` (``ab`` or ``ba``).

        ``max_chars`` cuts each of the input and the two responses to that many
        characters (marked with "[...]") so a long pair fits a small context window.
        """
        if order not in ORDERS:
            raise ValueError(f"order {order!r} is not one of {list(ORDERS)}")
        if task not in self.tasks:
            raise ConfigError(f"{self.path}: no [tasks.{task}] section; known tasks: {sorted(self.tasks)}")
        first, second = (pair.response_a, pair.response_b) if order == "ab" else (pair.response_b, pair.response_a)
        values = {
            "task": self.tasks[task]["task"],
            "criteria": self.tasks[task]["criteria"],
            "input": _cut(pair.prompt, max_chars),
            "response_a": _cut(first, max_chars),
            "response_b": _cut(second, max_chars),
            "instructions": self.instructions,
        }
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format_map(values)}]


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars] + " [...]"


def load_template(path: str | Path | None = None) -> JudgeTemplate:
    """Read and check a judge template (default: the packaged ``templates/judge/pairwise.toml``).

    ``path`` may also name a packaged template without its folder: ``rules-first`` (or
    ``rules_first``) is ``templates/judge/rules_first.toml``.

    Raises
    ------
    ConfigError
        The file is missing, is not TOML, lacks a key, uses an unknown placeholder, or a
        task lacks ``task`` or ``criteria``; the message names the file and the key.
    """
    path = Path(path) if path is not None else DEFAULT_TEMPLATE
    packaged = DEFAULT_TEMPLATE.parent / f"{path.name.replace('-', '_')}.toml"
    if not path.exists() and path.parent == Path(".") and packaged.exists():
        path = packaged
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"judge template {path}: {e.strerror}") from e
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"judge template {path}: {e}") from e
    for key in _REQUIRED_KEYS:
        if key not in doc:
            raise ConfigError(f"judge template {path}: missing key '{key}'")
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(doc["user"]) if name is not None}
    except ValueError as e:
        raise ConfigError(f"judge template {path}: key 'user': {e} (double literal braces: {{{{ }}}})") from e
    unknown = used - _FIELDS
    if unknown:
        raise ConfigError(f"judge template {path}: key 'user' uses unknown placeholder(s) {sorted(unknown)}; "
                          f"known: {sorted(_FIELDS)}")
    missing = {"input", "response_a", "response_b"} - used
    if missing:
        raise ConfigError(f"judge template {path}: key 'user' must show {sorted(missing)}")
    tasks = doc["tasks"]
    for name, table in tasks.items():
        for key in ("task", "criteria"):
            if not isinstance(table.get(key), str):
                raise ConfigError(f"judge template {path}: [tasks.{name}] needs a string '{key}'")
    choices = tuple(doc.get("choices", [" A", " B"]))
    if len(choices) != 2 or choices[0] == choices[1]:
        raise ConfigError(f"judge template {path}: 'choices' must be two different strings (A, then B)")
    return JudgeTemplate(
        path=str(path),
        version=prompt_version(data),
        system=str(doc["system"]),
        user=str(doc["user"]),
        instructions=str(doc["instructions"]),
        tasks={k: {"task": v["task"], "criteria": v["criteria"]} for k, v in tasks.items()},
        score_prefix=str(doc.get("score_prefix", 'preference: "Response')),
        choices=(str(choices[0]), str(choices[1])),
    )


def prompt_version(template_bytes: bytes) -> str:
    """The version of a template: the first 12 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(template_bytes).hexdigest()[:12]


#: A "Preference: ..." line of a judge's answer (markdown decoration allowed); ``rest`` is its value.
PREFERENCE_LINE = re.compile(r"[*_#\s]*preference[*_\s]*[:=：][*_\s]*(?P<rest>[^\n]*)", re.IGNORECASE)
_NAMED = re.compile(r"response[\s_]*[\"'“”‘’]?\s*(?P<letter>[ab])\b", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w'])(?P<letter>[AB])(?![\w'])")
_TIE = re.compile(r"\b(tie|equal(ly)?|neither|both)\b", re.IGNORECASE)


def parse_answer(text: str | None) -> str:
    """The label a judge's answer text gives, in the order shown: ``A``, ``B``, ``tie`` or ``parse_error``.

    Reads the last ``preference:`` line (markdown emphasis allowed; an empty line after it
    lets the next non-empty line count). It must name exactly one of "Response A" /
    "Response B" (or a bare capital A / B), or say tie; anything else (no preference line,
    both responses named, a truncated answer) is ``parse_error``: never guessed.
    """
    if not text:
        return PARSE_ERROR
    matches = list(PREFERENCE_LINE.finditer(text))
    if not matches:
        return PARSE_ERROR
    last = matches[-1]
    rest = last.group("rest").strip()
    if not rest:
        after = [line.strip() for line in text[last.end():].splitlines() if line.strip()]
        rest = after[0] if after else ""
    letters = {m.group("letter").upper() for m in _NAMED.finditer(rest)}
    if not letters:
        letters = {m.group("letter") for m in _BARE.finditer(rest)}
    if len(letters) == 1:
        return letters.pop()
    if not letters and _TIE.search(rest):
        return TIE
    return PARSE_ERROR


def to_stored_order(label: str, order: str) -> str:
    """Map a label given for the pair shown in ``order`` back to the stored order."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {list(ORDERS)}")
    return swap_label(label) if order == "ba" else label


def combine_orders(ab: Answer, ba: Answer) -> Answer:
    """One verdict from the answers of both orders, both already in the stored order.

    The same label twice gives that label (confidence: the mean of the two when both have
    one); a parse error on either side gives ``parse_error``; any other disagreement
    (A vs B, or a tie vs a winner) gives ``tie_inconsistent``.
    """
    if PARSE_ERROR in (ab.label, ba.label):
        return Answer(PARSE_ERROR)
    if ab.label != ba.label:
        return Answer(TIE_INCONSISTENT)
    if ab.confidence is not None and ba.confidence is not None:
        return Answer(ab.label, (ab.confidence + ba.confidence) / 2)
    return Answer(ab.label, ab.confidence if ab.confidence is not None else ba.confidence)


__all__ = ["Answer", "JudgeTemplate", "load_template", "prompt_version", "parse_answer", "to_stored_order",
           "combine_orders", "ORDERS", "DEFAULT_TEMPLATE", "PREFERENCE_LINE", "A", "B", "TIE"]

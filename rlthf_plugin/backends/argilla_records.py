"""Argilla's side of the pairwise template: the dataset settings the adapter needs (or a
:class:`~rlthf_plugin.backends.mapping.FieldMap` names), the question that holds the
answer (label, ranking or rating, read as A / B / tie), the record metadata it writes and
the labels it reads from responses.

Pure translation, no HTTP: :mod:`.argilla` is the adapter that sends and reads these.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, IncompatibleProjectError, require
from ..pairs import A, B, SKIP, TIE
from .base import HumanLabel, Task
from .mapping import (FieldMap, choice_label, ranking_label, ranking_options, ranking_value, rating_label,
                      rating_value)

log = logging.getLogger(__name__)

PLATFORM = "argilla"
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "argilla" / "preference_settings.json"
LABEL_QUESTION = "label"
COMMENT_QUESTION = "comment"
TEXT_FIELDS = ("prompt", "response_a", "response_b")
#: A text field the template shows first: why the pair was asked, in plain words.
WHY_FIELD = "why"
METADATA_TYPES = {"priority": "float", "reason": "terms", "iteration": "integer", "margin": "float"}
#: Question kinds that can hold the answer (see :mod:`~rlthf_plugin.backends.mapping`).
ANSWER_KINDS = ("label_selection", "ranking", "rating")
#: The URL query that opens the annotation page highest priority first (Argilla 2.8 has
#: no default sort and shows each annotator a per-user shuffle without one).
PRIORITY_SORT = "sort=metadata.priority.desc"
#: Our label -> the LabelQuestion's value.
LABEL_VALUES = {A: "a", B: "b", TIE: "tie"}


def load_settings(*, min_submitted: int = 1, path: Path = TEMPLATE):
    """The dataset settings of the template, with ``min_submitted`` annotators per record."""
    rg = require("argilla", "argilla")
    if min_submitted < 1:
        raise ConfigError(f"[argilla] min_submitted must be >= 1, got {min_submitted}")
    settings = rg.Settings.from_json(path)
    settings.distribution = rg.TaskDistribution(min_submitted=min_submitted)
    return settings


@dataclass(frozen=True)
class Answer:
    """The question that holds the answer: ``kind`` (label_selection, ranking, rating),
    ``name`` and ``options`` (label_selection: values of A, B, tie; ranking: the options
    of A and B; rating: the scale)."""

    kind: str
    name: str
    options: tuple = ()

    def label(self, value: Any) -> str | None:
        """A response value as A / B / tie (None when it reads as none of them)."""
        if value is None:
            return None
        if self.kind == "ranking":
            return ranking_label(value, self.options)
        if self.kind == "rating":
            return rating_label(value, self.options)
        return choice_label(value)

    def value(self, label: str) -> Any:
        """Our label as this question's value (a suggestion); None when it has none."""
        if self.kind == "ranking":
            return ranking_value(label, self.options)
        if self.kind == "rating":
            return rating_value(label, self.options)
        return dict(zip((A, B, TIE), self.options)).get(label)


#: The template's question.
DEFAULT_ANSWER = Answer("label_selection", LABEL_QUESTION, tuple(LABEL_VALUES[k] for k in (A, B, TIE)))


def _kind(prop) -> str:
    return prop.serialize()["settings"]["type"]


def _options(question) -> list:
    return [o["value"] for o in question.serialize()["settings"].get("options") or []]


def check_settings(settings, *, where: str, field_map: FieldMap | None = None) -> tuple[Answer, list[str]]:
    """The answer's question of ``settings``, and the metadata properties it lacks (to add).

    Raises :class:`IncompatibleProjectError` listing every field, question or metadata
    type that does not fit ``field_map`` (default: the template's names) at once.
    """
    fm = field_map or FieldMap()
    problems = []
    fields = {f.name: f for f in settings.fields}
    for ours, name in fm.texts.items():
        if name not in fields or _kind(fields[name]) != "text":
            problems.append(f"the text field '{name}' ({ours})")
    questions = {q.name: q for q in settings.questions}
    answer = None
    name = fm.label or (LABEL_QUESTION if LABEL_QUESTION in questions else "")
    if not name:
        fitting = [q.name for q in settings.questions if _kind(q) in ANSWER_KINDS]
        if len(fitting) == 1:
            name = fitting[0]
        elif fitting:
            problems.append(f"one answer question: it has {', '.join(fitting)}; choose with label=NAME")
    question = questions.get(name) if name else None
    if name and (question is None or _kind(question) not in ANSWER_KINDS):
        problems.append(f"a label, ranking or rating question '{name}'")
    elif question is not None:
        kind, options = _kind(question), _options(question)
        if kind == "label_selection":
            by_label = {}
            for v in options:
                by_label.setdefault(choice_label(v), v)
            missing = [x for x in (A, B, TIE) if x not in by_label]
            if missing:
                problems.append(f"the label(s) {', '.join(missing)} in question '{name}' (values a, b, tie)")
            else:
                answer = Answer(kind, name, tuple(by_label[x] for x in (A, B, TIE)))
        elif kind == "ranking":
            try:
                answer = Answer(kind, name, ranking_options(options, fm))
            except ValueError as e:
                problems.append(f"question '{name}': {e}")
        else:
            scale = sorted(int(v) for v in options)
            if len(scale) < 2:
                problems.append(f"a rating question '{name}' with at least two values")
            else:
                answer = Answer(kind, name, tuple(scale))
    elif not name and not problems:
        problems.append(f"a label question '{LABEL_QUESTION}' (a, b, tie), or a ranking or rating question")
    metadata = {m.name: m for m in settings.metadata}
    for prop, wanted in METADATA_TYPES.items():
        if prop in metadata and _kind(metadata[prop]) != wanted:
            problems.append(f"metadata property '{prop}' of type {wanted} (it is {_kind(metadata[prop])})")
    if problems:
        mapped = "" if fm.is_default else f" with --map {fm.to_text()}"
        raise IncompatibleProjectError(
            f"{where}{mapped} lacks " + "; ".join(problems) + ". Name the dataset's own fields and question with "
            "--map prompt=FIELD,response_a=FIELD,response_b=FIELD,label=QUESTION "
            "(README: \"Using an existing project or dataset\")")
    return answer, [prop for prop in METADATA_TYPES if prop not in metadata]


def record_metadata(task: Task) -> dict[str, Any]:
    """The record's metadata: priority, reason (terms ``key:value``, the full machine
    reason, hidden from annotators), iteration, margin."""
    meta: dict[str, Any] = {"priority": float(task.priority)}
    terms = sorted(f"{k}:{v:.4g}" if isinstance(v, float) else f"{k}:{v}" for k, v in task.reason.items())
    if terms:
        meta["reason"] = terms
    if task.iteration is not None:
        meta["iteration"] = int(task.iteration)
    if task.margin is not None:
        meta["margin"] = float(task.margin)
    return meta


def response_labels(record: Mapping[str, Any], responses: Sequence[Mapping[str, Any]], users: Mapping[str, str],
                    *, since: str | None = None, answer: Answer = DEFAULT_ANSWER) -> list[HumanLabel]:
    """Labels from a record's responses (server JSON): submitted ones are votes; a discarded
    one is a ``skip`` (it completes the task, never a preference); a draft withdraws an
    earlier vote (``deleted``). Used by pull and webhooks."""
    labels = []
    for r in responses:
        if since is not None and str(r["updated_at"]) < since:
            continue
        values = r.get("values") or {}
        label = answer.label((values.get(answer.name) or {}).get("value"))
        comment = (values.get(COMMENT_QUESTION) or {}).get("value")
        if r["status"] == "submitted" and label is None:
            log.warning("response %s has no answer to question '%s' that reads as A, B or tie; ignored",
                        r["id"], answer.name)
            continue
        user = str(r.get("user_id") or "")
        labels.append(HumanLabel(
            pair_id=str(record["external_id"]), label=(label or SKIP) if r["status"] == "submitted" else SKIP,
            annotator=users.get(user, user), platform=PLATFORM, external_id=str(r["id"]),
            labeled_at=_timestamp(r.get("updated_at")), comment=comment or None,
            deleted=r["status"] not in ("submitted", "discarded")))
    return labels


def _timestamp(value: Any) -> dt.datetime | None:
    """An Argilla time as an aware UTC datetime (the server writes UTC without a zone):
    versions of a label are compared by it (labels only move forward)."""
    if not value:
        return None
    stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp.astimezone(dt.timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


__all__ = ["ANSWER_KINDS", "Answer", "COMMENT_QUESTION", "DEFAULT_ANSWER", "LABEL_QUESTION", "LABEL_VALUES",
           "METADATA_TYPES", "PLATFORM", "PRIORITY_SORT", "TEMPLATE", "TEXT_FIELDS", "WHY_FIELD", "check_settings",
           "load_settings", "record_metadata", "response_labels"]

"""Argilla's side of the pairwise template: the dataset settings the adapter needs, the
record metadata it writes and the labels it reads from responses.

Pure translation, no HTTP: :mod:`.argilla` is the adapter that sends and reads these.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, IncompatibleProjectError, require
from ..pairs import A, B, SKIP, TIE
from .base import HumanLabel, Task

log = logging.getLogger(__name__)

PLATFORM = "argilla"
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "argilla" / "preference_settings.json"
LABEL_QUESTION = "label"
COMMENT_QUESTION = "comment"
TEXT_FIELDS = ("prompt", "response_a", "response_b")
METADATA_TYPES = {"priority": "float", "reason": "terms", "iteration": "integer", "margin": "float"}
#: Our label -> the LabelQuestion's value, and back.
LABEL_VALUES = {A: "a", B: "b", TIE: "tie"}
FROM_VALUE = {v: k for k, v in LABEL_VALUES.items()}


def load_settings(*, min_submitted: int = 1, path: Path = TEMPLATE):
    """The dataset settings of the template, with ``min_submitted`` annotators per record."""
    rg = require("argilla", "argilla")
    if min_submitted < 1:
        raise ConfigError(f"[argilla] min_submitted must be >= 1, got {min_submitted}")
    settings = rg.Settings.from_json(path)
    settings.distribution = rg.TaskDistribution(min_submitted=min_submitted)
    return settings


def check_settings(settings, *, where: str) -> None:
    """Raise :class:`IncompatibleProjectError` naming the first thing ``settings`` lacks."""
    def kind(prop) -> str:
        return prop.serialize()["settings"]["type"]

    fields = {f.name: f for f in settings.fields}
    for name in TEXT_FIELDS:
        if name not in fields or kind(fields[name]) != "text":
            raise IncompatibleProjectError(f"{where} lacks the text field '{name}' (needs {', '.join(TEXT_FIELDS)})")
    questions = {q.name: q for q in settings.questions}
    label = questions.get(LABEL_QUESTION)
    if label is None or kind(label) != "label_selection":
        raise IncompatibleProjectError(f"{where} lacks the label question '{LABEL_QUESTION}' (a, b, tie)")
    missing = sorted(set(LABEL_VALUES.values()) - set(label.labels))
    if missing:
        raise IncompatibleProjectError(f"{where}: question '{LABEL_QUESTION}' lacks the label(s) {missing}")
    metadata = {m.name: m for m in settings.metadata}
    for name, wanted in METADATA_TYPES.items():
        if name not in metadata or kind(metadata[name]) != wanted:
            raise IncompatibleProjectError(f"{where} lacks the {wanted} metadata property '{name}'")


def record_metadata(task: Task) -> dict[str, Any]:
    """The record's metadata: priority, reason (terms ``key:value``), iteration, margin."""
    meta: dict[str, Any] = {"priority": float(task.priority)}
    terms = sorted(f"{k}:{v}" for k, v in task.reason.items() if isinstance(v, str))
    if terms:
        meta["reason"] = terms
    if task.iteration is not None:
        meta["iteration"] = int(task.iteration)
    if task.margin is not None:
        meta["margin"] = float(task.margin)
    return meta


def response_labels(record: Mapping[str, Any], responses: Sequence[Mapping[str, Any]], users: Mapping[str, str],
                    *, since: str | None = None) -> list[HumanLabel]:
    """Labels from a record's responses (server JSON): submitted ones are votes; a
    discarded or draft one withdraws an earlier vote (``deleted``). Used by pull and webhooks."""
    labels = []
    for r in responses:
        if since is not None and str(r["updated_at"]) < since:
            continue
        values = r.get("values") or {}
        value = (values.get(LABEL_QUESTION) or {}).get("value")
        comment = (values.get(COMMENT_QUESTION) or {}).get("value")
        if r["status"] == "submitted" and value not in FROM_VALUE:
            log.warning("response %s has no label among %s; ignored", r["id"], sorted(FROM_VALUE))
            continue
        user = str(r.get("user_id") or "")
        labels.append(HumanLabel(
            pair_id=str(record["external_id"]), label=FROM_VALUE.get(value, SKIP), annotator=users.get(user, user),
            platform=PLATFORM, external_id=str(r["id"]), labeled_at=_timestamp(r.get("updated_at")),
            comment=comment or None, deleted=r["status"] != "submitted"))
    return labels


def _timestamp(value: Any) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


__all__ = ["COMMENT_QUESTION", "FROM_VALUE", "LABEL_QUESTION", "LABEL_VALUES", "METADATA_TYPES", "PLATFORM", "TEMPLATE",
           "TEXT_FIELDS", "check_settings", "load_settings", "record_metadata", "response_labels"]

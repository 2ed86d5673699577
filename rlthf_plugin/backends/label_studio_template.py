"""Label Studio's side of the pairwise template: the names its label config must have,
and the task JSON (data and optional prediction) the adapter imports.

Pure translation, no HTTP: :mod:`.label_studio` is the adapter that sends these.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..errors import IncompatibleProjectError
from .base import Task

#: The project template: Text prompt/response_a/response_b, Choices preference (A/B/tie).
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "label_studio" / "pairwise.xml"
#: Object tags (Text) the adapter fills, each with the task data field of the same name.
TEXT_FIELDS = ("prompt", "response_a", "response_b")
CHOICES_NAME = "preference"
CHOICES_TO_NAME = "prompt"
COMMENT_NAME = "comment"
LABELS = ("A", "B", "tie")


def check_label_config(xml: str, *, where: str) -> None:
    """Raise IncompatibleProjectError unless the config has the names the adapter uses."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise IncompatibleProjectError(f"{where}: the label config is not valid XML ({e})") from e
    tags = {el.get("name"): el for el in root.iter() if el.get("name")}
    problems = []
    for name in TEXT_FIELDS:
        el = tags.get(name)
        if el is None or el.get("value") != f"${name}":
            problems.append(f'a <Text name="{name}" value="${name}"/>')
    choices = tags.get(CHOICES_NAME)
    if choices is None or choices.tag != "Choices":
        problems.append(f'a <Choices name="{CHOICES_NAME}"> with the choices A, B, tie')
    else:
        values = {choice_label(c.get("alias") or c.get("value") or "") for c in choices.iter("Choice")}
        missing = [v for v in LABELS if v not in values]
        if missing:
            problems.append(f'the choice(s) {", ".join(missing)} in <Choices name="{CHOICES_NAME}">')
        if choices.get("toName") != CHOICES_TO_NAME:
            problems.append(f'<Choices name="{CHOICES_NAME}" toName="{CHOICES_TO_NAME}">')
    if problems:
        raise IncompatibleProjectError(
            f"{where}: the label config lacks {'; '.join(problems)}. Use templates/label_studio/pairwise.xml "
            "or rename the tags (see templates/label_studio/README.md), or push with --create NAME")


def task_payload(task: Task, *, show_predictions: bool = False) -> dict[str, Any]:
    """The task as Label Studio imports it (with its prediction when AI labels are shown)."""
    pair = task.pair
    data = {"pair_id": pair.id, "prompt": pair.prompt, "response_a": pair.response_a,
            "response_b": pair.response_b, "priority": float(task.priority), "reason": reason_text(task)}
    out: dict[str, Any] = {"data": data}
    if show_predictions and task.ai_label in LABELS:
        score = task.margin if task.margin is not None else task.ai_score
        prediction: dict[str, Any] = {
            "model_version": task.model_version,
            "result": [{"from_name": CHOICES_NAME, "to_name": CHOICES_TO_NAME, "type": "choices",
                        "value": {"choices": [task.ai_label]}}],
        }
        if score is not None and math.isfinite(score):
            prediction["score"] = float(score)
        out["predictions"] = [prediction]
    return out


def reason_text(task: Task) -> str:
    """Priority and reason as one line an annotator can read."""
    parts = [f"priority {task.priority:g}"]
    for key, value in task.reason.items():
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " · ".join(parts)


def choice_label(value: str) -> str:
    v = str(value).strip()
    low = v.lower()
    if low in ("a", "response a", "left"):
        return "A"
    if low in ("b", "response b", "right"):
        return "B"
    if low in ("tie", "equal", "same", "draw"):
        return "tie"
    return v


__all__ = ["CHOICES_NAME", "CHOICES_TO_NAME", "COMMENT_NAME", "LABELS", "TEMPLATE", "TEXT_FIELDS", "check_label_config",
           "choice_label", "reason_text", "task_payload"]

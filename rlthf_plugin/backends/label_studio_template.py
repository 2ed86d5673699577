"""Label Studio's side of the pairwise template: the names its label config must have
(or a :class:`~rlthf_plugin.backends.mapping.FieldMap` gives), the control that holds the
answer (``<Choices>`` or ``<Pairwise>``), and the task JSON (data, meta, optional
prediction) the adapter imports.

Pure translation, no HTTP: :mod:`.label_studio` is the adapter that sends these.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import IncompatibleProjectError
from .base import Task
from .mapping import FieldMap, choice_label as _read_choice, pairwise_value
from .reasons import machine_reason, plain_reason

#: The project template: Text prompt/response_a/response_b, Choices preference (A/B/tie).
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "label_studio" / "pairwise.xml"
#: Object tags (Text) the adapter fills, each with the task data field of the same name.
TEXT_FIELDS = ("prompt", "response_a", "response_b")
CHOICES_NAME = "preference"
CHOICES_TO_NAME = "prompt"
COMMENT_NAME = "comment"
LABELS = ("A", "B", "tie")
#: Control tags that can hold the answer.
ANSWER_TAGS = ("Choices", "Pairwise")


@dataclass(frozen=True)
class LabelControl:
    """The control that holds the answer in a project's label config.

    ``kind`` is "choices" or "pairwise"; ``to_name`` is what a prediction names as its
    object (for ``<Pairwise>`` the first object of ``toName``: the bulk prediction import
    drops a prediction that names the tag itself); ``choices`` maps A / B / tie to the
    config's choice values.
    """

    kind: str
    name: str
    to_name: str
    choices: Mapping[str, str] = field(default_factory=dict)


#: The template's control, used until the project's config has been read.
DEFAULT_CONTROL = LabelControl("choices", CHOICES_NAME, CHOICES_TO_NAME, {"A": "A", "B": "B", "tie": "tie"})


def check_label_config(xml: str, *, where: str, field_map: FieldMap | None = None) -> LabelControl:
    """The answer's control of a label config; raises IncompatibleProjectError listing
    everything the config lacks for ``field_map`` (default: the template's names)."""
    fm = field_map or FieldMap()
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise IncompatibleProjectError(f"{where}: the label config is not valid XML ({e})") from e
    tags = {el.get("name"): el for el in root.iter() if el.get("name")}
    shown = {el.get("value")[1:]: el for el in root.iter() if el.get("name") and (el.get("value") or "").startswith("$")}
    problems = []
    for ours, key in fm.texts.items():
        if key not in shown:
            problems.append(f'a tag showing ${key} for {ours} (e.g. <Text name="{key}" value="${key}"/>)')
    answers = [el for el in root.iter() if el.tag in ANSWER_TAGS and el.get("name")]
    control = None
    if fm.label:
        el = tags.get(fm.label)
        if el is None or el.tag not in ANSWER_TAGS:
            problems.append(f'a <Choices> or <Pairwise> named "{fm.label}" (label={fm.label})')
        else:
            control = el
    elif CHOICES_NAME in tags and tags[CHOICES_NAME].tag in ANSWER_TAGS:
        control = tags[CHOICES_NAME]
    elif len(answers) == 1:
        control = answers[0]
    elif answers:
        problems.append(f"one answer control: it has {', '.join(a.get('name') for a in answers)}; "
                        "choose with label=NAME")
    else:
        problems.append(f'a <Choices name="{CHOICES_NAME}"> with the choices A, B, tie, or a <Pairwise> '
                        'over response_a and response_b')
    result = None
    if control is not None and control.tag == "Choices":
        choices: dict[str, str] = {}
        for c in control.iter("Choice"):
            for text in (c.get("alias"), c.get("value")):
                label = _read_choice(text) if text else None
                if label and label not in choices:
                    choices[label] = c.get("value") or ""
        missing = [v for v in LABELS if v not in choices]
        if missing:
            problems.append(f'the choice(s) {", ".join(missing)} in <Choices name="{control.get("name")}">')
        to_name = (control.get("toName") or "").split(",")[0]
        if to_name not in tags:
            problems.append(f'<Choices name="{control.get("name")}"> with a toName that names an object tag')
        result = LabelControl("choices", control.get("name"), to_name, choices)
    elif control is not None:
        names = [n.strip() for n in (control.get("toName") or "").split(",")]
        values = [(tags[n].get("value") or "") if n in tags else "" for n in names]
        wanted = [f"${fm.response_a}", f"${fm.response_b}"]
        if values != wanted:
            problems.append(f'<Pairwise name="{control.get("name")}"> whose toName lists the tag showing '
                            f'{wanted[0]} first (left = response A) and {wanted[1]} second; it lists '
                            f'{", ".join(names)} showing {", ".join(v or "nothing" for v in values)}')
        result = LabelControl("pairwise", control.get("name"), names[0] if names else "")
    if problems:
        hint = ("Use templates/label_studio/pairwise.xml, or name the project's own fields with --map "
                "prompt=KEY,response_a=KEY,response_b=KEY,label=CONTROL (README: \"Using an existing project "
                "or dataset\")")
        mapped = "" if fm.is_default else f" with --map {fm.to_text()}"
        raise IncompatibleProjectError(f"{where}{mapped}: the label config lacks " + "; ".join(problems) + ". " + hint)
    return result


#: The data key holding the plain reason (``--map reason=NAME`` renames it).
REASON_KEY = "reason"


def reason_hint(label_config: str, *, where: str, field_map: FieldMap | None = None) -> str | None:
    """What to add when a label config shows annotators no reason (no tag with
    ``value="$reason"``, or the mapped name); None when it shows one."""
    key = (field_map or FieldMap()).reason or REASON_KEY
    if f"${key}" in (label_config or ""):
        return None
    return (f"{where} shows annotators no reason why a pair was asked: its label config has no tag showing "
            f"${key}. Add <Text name=\"{key}\" value=\"${key}\"/> to it (Settings -> Labeling Interface -> Code), "
            "or name the data field your config shows with --map reason=NAME")


def task_payload(task: Task, *, show_predictions: bool = False, field_map: FieldMap | None = None,
                 control: LabelControl = DEFAULT_CONTROL) -> dict[str, Any]:
    """The task as Label Studio imports it: the texts under the project's own names, the
    plain reason for the labeler, and the AI label as a prediction when AI labels are shown.

    ``meta`` keeps ids only (``pair_id``, ``iteration``): annotators can read a task's meta
    through the API, so the machine details (margin, p_wrong, signals) stay in the ledger.
    The AI label is pre-selected only when its calibrated probability of being right is
    above 0.5 (or when there is no calibration yet, without a score): a prediction the
    model thinks is probably wrong is not offered as the answer."""
    pair, fm = task.pair, field_map or FieldMap()
    data = {"pair_id": pair.id, fm.prompt: pair.prompt, fm.response_a: pair.response_a,
            fm.response_b: pair.response_b, "priority": float(task.priority),
            fm.reason or REASON_KEY: plain_reason(task.reason)}
    out: dict[str, Any] = {"data": data, "meta": {"rlthf": {"pair_id": pair.id, "iteration": task.iteration}}}
    score = task.ai_score if task.ai_score is not None and math.isfinite(task.ai_score) else None
    if show_predictions and task.ai_label in LABELS and (score is None or score > 0.5):
        if control.kind == "pairwise":
            selected = pairwise_value(task.ai_label)
            result = [] if selected is None else [{"from_name": control.name, "to_name": control.to_name,
                                                   "type": "pairwise", "value": {"selected": selected}}]
        else:
            result = [{"from_name": control.name, "to_name": control.to_name, "type": "choices",
                       "value": {"choices": [control.choices.get(task.ai_label, task.ai_label)]}}]
        if result:  # a tie has no <Pairwise> answer to show
            prediction: dict[str, Any] = {"model_version": task.model_version, "result": result}
            if score is not None and 0.0 <= score <= 1.0:
                prediction["score"] = float(score)  # a probability, never the raw margin
            out["predictions"] = [prediction]
    return out


def reason_text(task: Task) -> str:
    """The full machine reason as one line (operators only; labelers see the plain one)."""
    return machine_reason(task.reason, task.priority)


def choice_label(value: str) -> str:
    """A choice's value as A / B / tie, else the value itself (stripped)."""
    return _read_choice(value) or str(value).strip()


__all__ = ["REASON_KEY", "reason_hint", "ANSWER_TAGS", "CHOICES_NAME", "CHOICES_TO_NAME", "COMMENT_NAME", "DEFAULT_CONTROL", "LABELS", "LabelControl",
           "TEMPLATE", "TEXT_FIELDS", "check_label_config", "choice_label", "reason_text", "task_payload"]

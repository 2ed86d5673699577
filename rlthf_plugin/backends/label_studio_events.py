"""Label Studio annotations and webhook events as :class:`HumanLabel` (translation only).

No client and no server here: the adapter (:mod:`.label_studio`) reads annotations from
the export, the task listings or a webhook body and hands them to these functions.

- An annotation's answer is the result item of the project's answer control (Choices or
  Pairwise; ``selected: left`` is response A); a cancelled (skipped) or empty annotation
  is ``skip``; an answer that is not A, B or tie is no vote (``skip``, logged).
- Webhook events: ANNOTATION_CREATED / ANNOTATION_UPDATED carry the task and the
  annotation; ANNOTATIONS_DELETED carries the deleted annotations (ids, sometimes their
  task), and no time: deleted after every stored version.
- Times are UTC always: the ledger compares versions of a label by them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Callable, Mapping

from ..errors import BadWebhookError, WebhookAuthError
from .base import HumanLabel
from .label_studio_template import COMMENT_NAME, choice_label
from .mapping import pairwise_label

log = logging.getLogger(__name__)

PLATFORM = "label-studio"
#: Events the webhook asks for; the deletion event's name is plural in Label Studio.
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
#: The header carrying the webhook secret (HTTP headers are case-insensitive).
SECRET_HEADER = "X-Rlthf-Secret"

#: user (id, object or None), created_username shown by a webhook -> the annotator's name
UserName = Callable[..., str]


def annotation_label(pair_id: str, annotation: Mapping[str, Any], *, control: str | None, user_name: UserName,
                     deleted: bool = False) -> HumanLabel:
    """One annotation as a HumanLabel (a cancelled/skipped or empty one is ``skip``).

    ``control`` is the name of the answer's control (None: any Choices or Pairwise result,
    what the config checked at push allows); ``user_name(user, shown=...)`` names the
    annotator.
    """
    label, comment = "skip", None
    if not annotation.get("was_cancelled"):
        for item in annotation.get("result") or []:
            value = item.get("value") or {}
            answer = result_answer(item, control)
            if answer is not None:
                if answer not in ("A", "B", "tie"):  # not one of the answers: no vote
                    log.warning("annotation %s: answer %r is not A, B or tie", annotation.get("id"), answer)
                    answer = "skip"
                label = answer
            elif item.get("from_name") == COMMENT_NAME and value.get("text"):
                comment = "\n".join(value["text"]) if isinstance(value["text"], list) else str(value["text"])
    return HumanLabel(pair_id=pair_id, label=label,
                      annotator=user_name(annotation.get("completed_by"), shown=annotation.get("created_username")),
                      platform=PLATFORM, external_id=str(annotation["id"]),
                      labeled_at=parse_time(annotation.get("updated_at") or annotation.get("created_at")),
                      comment=comment, deleted=deleted)


def result_answer(item: Mapping[str, Any], control: str | None) -> str | None:
    """The label in one result item of the answer's control (``control``; None: any), else None."""
    if control is not None and item.get("from_name") != control:
        return None
    value, kind = item.get("value") or {}, str(item.get("type", "")).lower()
    if kind == "pairwise" and value.get("selected"):
        return pairwise_label(value["selected"]) or str(value["selected"])
    if kind == "choices" and value.get("choices"):
        return choice_label(value["choices"][0])
    return None


def header_secret(headers: Mapping[str, str]) -> str:
    """The secret a delivery carries; a delivery without the header is refused."""
    got = next((v for k, v in headers.items() if k.lower() == SECRET_HEADER.lower()), None)
    if got is None:
        raise WebhookAuthError(f"Label Studio webhook without the {SECRET_HEADER} header")
    return got


def event_labels(body: bytes, to_label: Callable[[str, Mapping[str, Any]], HumanLabel]) -> list[HumanLabel]:
    """An annotation event's body (already authenticated) as labels.

    ``to_label(pair_id, annotation)`` translates one annotation (:func:`annotation_label`
    with the project's control). A deleted annotation comes back as a label with
    ``deleted=True`` (its pair id is empty when Label Studio sends only the annotation id;
    storing marks it by id). A task rlthf did not push (no ``pair_id``) and other actions
    give no label. A body of the wrong shape raises :class:`BadWebhookError`.
    """
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadWebhookError(f"Label Studio webhook: the body is not JSON ({type(e).__name__})") from e
    if not isinstance(event, dict):
        raise BadWebhookError(f"Label Studio webhook: the body is {type(event).__name__}, not a JSON object")
    action = event.get("action")
    try:
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            task = _object(event.get("task"), "task")
            annotation = _object(event.get("annotation"), "annotation")
            if annotation.get("id") is None:
                raise BadWebhookError(f"Label Studio webhook: {action}: annotation.id is missing")
            _check_result(annotation.get("result"), action)
            pair_id = _object(task.get("data") or {}, "task.data").get("pair_id")
            if not pair_id:
                return []  # a task rlthf did not push
            return [to_label(str(pair_id), annotation)]
        if action == "ANNOTATIONS_DELETED":
            annotations = event.get("annotations")
            if not isinstance(annotations, list) or not all(isinstance(a, dict) and "id" in a for a in annotations):
                raise BadWebhookError("Label Studio webhook: ANNOTATIONS_DELETED: annotations must be a list "
                                      "of objects with an id")
            # The event carries no time: no labeled_at, so the ledger orders the deletion
            # after every stored version of the label instead of on the receiver's clock.
            return [HumanLabel(pair_id=_deleted_pair_id(a), label="skip", annotator="", platform=PLATFORM,
                               external_id=str(a["id"]), labeled_at=None, deleted=True) for a in annotations]
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise BadWebhookError(f"Label Studio webhook: {action}: {type(e).__name__}: {e}".splitlines()[0]) from e
    return []


def changed_query(since: dt.datetime, counter: str | None) -> str:
    """Data Manager query: tasks updated at or after ``since``, and ``counter`` > 0 (or, for
    None, no annotation of either kind), in id order."""
    stamp = since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    items = [{"filter": "filter:tasks:updated_at", "operator": "greater_or_equal", "type": "Datetime",
              "value": stamp}]
    if counter is not None:
        items.append({"filter": f"filter:tasks:{counter}", "operator": "greater", "type": "Number", "value": 0})
    else:
        items += [{"filter": f"filter:tasks:{c}", "operator": "equal", "type": "Number", "value": 0}
                  for c in ("total_annotations", "cancelled_annotations")]
    return json.dumps({"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:id"]})


def parse_time(value: Any) -> dt.datetime | None:
    """A Label Studio time (ISO text or datetime) in UTC; None for none."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    # UTC always: the ledger compares versions of a label by this time (labels only move forward).
    return stamp.astimezone(dt.timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def _check_result(result: Any, action: str) -> None:
    """A :class:`BadWebhookError` (HTTP 400) naming the field unless ``result`` is Label
    Studio's shape: a list of objects whose ``value`` is an object, ``choices`` a list of
    strings and ``selected`` a string."""
    if result is None:
        return
    if not isinstance(result, list):
        raise BadWebhookError(f"Label Studio webhook: {action}: annotation.result must be a list, "
                              f"got {type(result).__name__}")
    for i, item in enumerate(result):
        where = f"annotation.result[{i}]"
        if not isinstance(item, dict):
            raise BadWebhookError(f"Label Studio webhook: {action}: {where} must be an object, got {type(item).__name__}")
        value = item.get("value", {})
        if not isinstance(value, dict):
            raise BadWebhookError(f"Label Studio webhook: {action}: {where}.value must be an object")
        choices = value.get("choices")
        if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
            raise BadWebhookError(f"Label Studio webhook: {action}: {where}.value.choices must be a list of strings")
        if "selected" in value and not isinstance(value["selected"], str):
            raise BadWebhookError(f"Label Studio webhook: {action}: {where}.value.selected must be a string")


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise BadWebhookError(f"Label Studio webhook: {name} must be a JSON object, got {type(value).__name__}")
    return value


def _deleted_pair_id(annotation: Mapping[str, Any]) -> str:
    """The pair id a deleted annotation names, or "" (storing then marks it by annotation id)."""
    task = annotation.get("task")
    data = task.get("data") if isinstance(task, dict) else None
    pair_id = data.get("pair_id") if isinstance(data, dict) else None
    return str(pair_id) if pair_id else ""


__all__ = ["PLATFORM", "SECRET_HEADER", "WEBHOOK_ACTIONS", "annotation_label", "changed_query", "event_labels",
           "header_secret", "parse_time", "result_answer"]

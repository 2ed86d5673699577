"""Argilla webhook deliveries: Standard Webhooks signature and timestamp verified (the
``standardwebhooks`` package), the body's shape checked, responses translated by the same
function as pull.

Replays are refused by the receiver: :meth:`WebhookVerifier.delivery_id` is remembered in
the same ledger transaction as the labels. A mixin of
:class:`~rlthf_plugin.backends.argilla.ArgillaBackend`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Mapping

from ..errors import BadWebhookError, WebhookAuthError, require
from .argilla_client import raise_for
from .argilla_records import response_labels
from .base import HumanLabel

WEBHOOK_EVENTS = ("response.created", "response.updated", "response.deleted", "record.completed")
#: Prefix of this platform's webhook delivery ids in the ledger's replay memory.
SEEN_PREFIX = "argilla:"
#: Standard Webhooks' timestamp tolerance (the ``standardwebhooks`` package checks it).
WEBHOOK_TOLERANCE = dt.timedelta(minutes=5)


class WebhookVerifier:
    """``verify``, ``delivery_id`` and ``parse_webhook``."""

    def _current_secret(self) -> str | None:
        secret = self.state.secret("argilla", "webhook_secret")  # may have been stored since we started
        if secret:
            return str(secret)
        return str(self.webhook_secret) if self.webhook_secret else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> dict:
        """The delivery's JSON payload when its signature, timestamp and id are valid."""
        standardwebhooks = require("standardwebhooks", "argilla")
        secret = self._current_secret()
        if not secret:
            raise WebhookAuthError("no Argilla webhook secret is configured ([argilla] webhook_secret)")
        headers = {k.lower(): v for k, v in headers.items()}
        if not all(headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
            raise WebhookAuthError("unsigned delivery (webhook-id, webhook-timestamp, webhook-signature)")
        try:
            payload = standardwebhooks.Webhook(secret).verify(body, headers)
        except standardwebhooks.WebhookVerificationError as e:
            raise WebhookAuthError(f"invalid signature or timestamp: {e}") from e
        except (ValueError, UnicodeDecodeError) as e:  # signed, but not JSON
            raise BadWebhookError(f"Argilla webhook: the body is not JSON ({type(e).__name__})") from e
        if not isinstance(payload, dict):
            raise BadWebhookError(f"Argilla webhook: the body is {type(payload).__name__}, not a JSON object")
        return payload

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The delivery's id for replay protection (remembered with its labels)."""
        value = next((v for k, v in headers.items() if k.lower() == "webhook-id"), None)
        return SEEN_PREFIX + value if value else None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Verify a delivery and translate it; :class:`BadWebhookError` when its body is not
        the event's shape (the receiver answers 400 so Argilla does not retry it)."""
        payload = self.verify(headers, body)
        event, data = payload.get("type"), payload.get("data")
        if event not in WEBHOOK_EVENTS:
            return []
        data = _field(data, "data", dict)
        if event == "record.completed":
            if _dataset_id(data, "data") != str(self.dataset().id):
                return []  # webhooks are server-wide: another dataset's record
            return self._completed(_field(data.get("id"), "data.id", str))
        record = _field(data.get("record"), "data.record", dict)
        if _dataset_id(record, "data.record") != str(self.dataset().id):
            return []
        user = _field(data.get("user"), "data.user", dict)
        for key, kind in (("id", str), ("status", str), ("updated_at", str)):
            _field(data.get(key), f"data.{key}", kind)
        _field(record.get("external_id"), "data.record.external_id", str)
        response = {**data, "user_id": user.get("id")}
        users = {str(response["user_id"]): str(user.get("username") or user.get("id") or "")}
        try:
            labels = response_labels(record, [response], users, answer=self.answer)
        except (TypeError, ValueError, AttributeError) as e:
            raise BadWebhookError(f"Argilla webhook: {event}: {e}") from e
        if event == "response.deleted":  # gone, whatever it said: on Argilla's clock, as of its last version
            labels = [HumanLabel(**{**lab.__dict__, "deleted": True}) for lab in labels]
        return labels

    def _completed(self, record_id: str) -> list[HumanLabel]:
        try:
            uuid.UUID(record_id)
        except ValueError as e:
            raise BadWebhookError(f"Argilla webhook: data.id is not a record id: {record_id[:60]!r}") from e
        r = self.http.get(f"/api/v1/records/{record_id}", params={"include": ["responses"]})
        if r.status_code == 404:
            raise BadWebhookError(f"Argilla webhook: record {record_id} does not exist")
        raise_for(r, f"reading record {record_id}")
        record = r.json()
        responses = record.get("responses") or []
        return response_labels(record, responses, self._user_names({str(x["user_id"]) for x in responses}),
                               answer=self.answer)


def _field(value: Any, name: str, kind: type) -> Any:
    """``value`` when it is a ``kind``, else a one-line :class:`BadWebhookError` naming the field."""
    if not isinstance(value, kind) or (kind is str and not value):
        shown = "missing" if value is None else f"a {type(value).__name__}"
        raise BadWebhookError(f"Argilla webhook: {name} must be a {'JSON object' if kind is dict else kind.__name__}, "
                              f"got {shown}")
    return value


def _dataset_id(item: Mapping[str, Any], where: str) -> str:
    return str(_field(_field(item.get("dataset"), f"{where}.dataset", dict).get("id"), f"{where}.dataset.id", str))


__all__ = ["SEEN_PREFIX", "WEBHOOK_EVENTS", "WEBHOOK_TOLERANCE", "WebhookVerifier"]

"""Label Studio webhook deliveries: the secret header checked, the event translated.

Label Studio signs nothing, so the webhook carries a secret header
(:data:`~rlthf_plugin.backends.label_studio_events.SECRET_HEADER`), compared in constant
time; Label Studio shows that header to project members, so the labels are then read back
from Label Studio (:mod:`.label_studio_readback`). A mixin of :class:`~rlthf_plugin.backends.label_studio.LabelStudioBackend`.
"""

from __future__ import annotations

import hmac
from typing import Mapping

from ..errors import WebhookAuthError
from ..secret import Secret
from .base import HumanLabel
from .label_studio_events import event_labels, header_secret


class WebhookReceiver:
    """``parse_webhook``: authenticate a delivery, then translate it into labels."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Check the secret header, translate an annotation event into labels
        (:func:`.label_studio_events.event_labels`), then replace them by what Label Studio
        itself has (:meth:`.label_studio_readback.ReadBack.read_back`): project members can
        read the secret header."""
        self._check_secret(headers)
        return self.read_back(event_labels(body, self.to_label))

    def _check_secret(self, headers: Mapping[str, str]) -> None:
        got = header_secret(headers)
        for attempt in range(2):
            expected = self._webhook_secret
            if expected and hmac.compare_digest(got.encode(), str(expected).encode()):
                return
            if attempt == 0 and not self._reload_secret():
                break
        raise WebhookAuthError("Label Studio webhook with a wrong secret" if self._webhook_secret
                               else "Label Studio webhook received but no webhook_secret is configured")

    def _reload_secret(self) -> bool:
        """Read the secret again from the state (a push may have generated it since)."""
        if self.state is None:
            return False
        value = self.state.secret("label_studio", "webhook_secret")
        if not value or value == self._webhook_secret:
            return False
        self._webhook_secret = Secret(value)
        return True


__all__ = ["WebhookReceiver"]

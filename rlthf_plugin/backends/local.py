"""An in-memory labeling platform: tasks kept in a dict, answers given from Python.

The embedded default for the demo and for the loop's and the worker's own tests: it runs
the same push / pull / webhook path as Label Studio and Argilla without a server. It never
stands in for those platforms in their adapters' tests, which run against real servers.

Answers arrive through :meth:`LocalBackend.answer` (a person or an oracle in the same
process) or as a webhook whose JSON body is ``{"pair_id", "label", "annotator"}``,
signed with the shared secret in the ``X-Rlthf-Secret`` header when one is set.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import threading
from typing import Any, Mapping, Sequence

from ..errors import BackendError, WebhookAuthError
from .base import HumanLabel, PullResult, PushReport, Task

#: Header carrying the shared webhook secret.
SECRET_HEADER = "x-rlthf-secret"


class LocalBackend:
    """Tasks and labels in memory; thread-safe, so a webhook and a worker may share it.

    Parameters
    ----------
    target : str, default "local"
        The name of the (one) project; the ledger records pushes under it.
    secret : str or None, default None
        When set, a webhook delivery must carry it in ``X-Rlthf-Secret``.
    """

    platform = "local"

    def __init__(self, target: str = "local", *, secret: str | None = None):
        self.target = target
        self.secret = secret
        self.tasks: dict[str, Task] = {}
        self._ids: dict[str, str] = {}
        self._labels: list[HumanLabel] = []
        self._lock = threading.Lock()

    def health(self) -> bool:
        return True

    def ensure_project(self) -> str:
        return self.target

    def push(self, tasks: Sequence[Task], *, known: Mapping[str, str]) -> PushReport:
        """Create the tasks not held yet; a task pushed twice is found, not duplicated."""
        report = PushReport(target=self.target)
        with self._lock:
            for task in tasks:
                pid = task.pair.id
                if pid in self._ids:
                    report.existing += 1
                else:
                    self._ids[pid] = f"local-{len(self._ids) + 1}"
                    self.tasks[pid] = task
                    report.created += 1
                report.mapping[pid] = self._ids[pid]
        return report

    def answer(self, pair_id: str, label: str, *, annotator: str = "local", comment: str | None = None,
               deleted: bool = False) -> HumanLabel:
        """Record one answer on a pushed pair (A, B, tie or skip) and return it as a label."""
        with self._lock:
            if pair_id not in self._ids:
                raise BackendError(f"local backend: pair {pair_id} was never pushed to {self.target}")
            label_ = HumanLabel(pair_id=pair_id, label=label, annotator=annotator, platform=self.platform,
                                external_id=f"{self._ids[pair_id]}:{annotator}",
                                labeled_at=dt.datetime.now(dt.timezone.utc), comment=comment, deleted=deleted)
            self._labels.append(label_)
        return label_

    def pull(self, *, cursor: Any = None) -> PullResult:
        """Labels answered since ``cursor`` (a count of labels already read; all when None)."""
        with self._lock:
            start = int(cursor or 0)
            return PullResult(labels=list(self._labels[start:]), cursor=len(self._labels))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Verify the shared secret, then record the answer the body carries."""
        if self.secret is not None:
            given = {k.lower(): v for k, v in headers.items()}.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                raise WebhookAuthError("local webhook: missing or wrong X-Rlthf-Secret")
        try:
            event = json.loads(body)
            pair_id, label = event["pair_id"], event["label"]
        except (ValueError, KeyError, TypeError) as e:
            raise BackendError(f"local webhook: expected a JSON object with pair_id and label: {e}") from e
        return [self.answer(pair_id, label, annotator=event.get("annotator", "local"))]

    def close(self) -> None:
        pass


def from_config(config: Any = None, *, target: str = "local", secret: str | None = None, **_: Any) -> LocalBackend:
    """A fresh in-memory backend (nothing in ``config`` applies to it)."""
    return LocalBackend(target, secret=secret)


__all__ = ["LocalBackend", "SECRET_HEADER", "from_config"]

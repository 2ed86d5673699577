"""The service's labeling-platform adapters: one per platform, opened on first use.

Shared by the webhook receiver (:class:`rlthf_plugin.service.app.Receiver`) and the worker
(:class:`rlthf_plugin.service.worker.Worker`); each holds its own set, so the worker's
thread and the request threads never share an SDK client.
"""

from __future__ import annotations

import threading
from typing import Mapping

from ..backends import LabelingBackend, open_backend
from ..workspace import Workspace


class Adapters:
    """Platform name -> adapter, opened from ``workspace``'s config when first asked for.

    ``given`` are adapters already open (e.g. a
    :class:`~rlthf_plugin.backends.local.LocalBackend`); they are closed with the others.
    Safe to call from several threads.
    """

    def __init__(self, workspace: Workspace, given: Mapping[str, LabelingBackend] | None = None):
        self.workspace = workspace
        self._open: dict[str, LabelingBackend] = dict(given or {})
        self._lock = threading.Lock()

    def get(self, platform: str) -> LabelingBackend:
        with self._lock:
            if platform not in self._open:
                self._open[platform] = open_backend(platform, self.workspace.config, workspace=self.workspace)
            return self._open[platform]

    def close(self) -> None:
        """Close every adapter opened (or given) so far; a later :meth:`get` opens anew."""
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for backend in opened:
            backend.close()

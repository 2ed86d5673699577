"""The webhook service: receivers for Label Studio and Argilla over one workspace.

Endpoints are thin (STYLE rule 13): verify the delivery, translate it with the
platform's adapter, store the labels through :func:`rlthf_plugin.sync.store_labels` (the
same path as pull, so a lost webhook is repaired by the next pull), return.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the handlers' annotations
# at run time, and ``fastapi.Request`` is only a local name inside create_app.
import logging
import os
import threading
from pathlib import Path
from typing import Any

from .backends import BACKENDS, LabelingBackend, open_backend
from .errors import RlthfError, WebhookAuthError, require
from .sync import store_labels
from .workspace import Workspace

log = logging.getLogger(__name__)


class Receiver:
    """Holds the workspace and one adapter per platform, created on first use."""

    def __init__(self, root: str | os.PathLike):
        self.workspace = Workspace.open(root)
        self._backends: dict[str, LabelingBackend] = {}
        self._lock = threading.Lock()

    def backend(self, platform: str) -> LabelingBackend:
        with self._lock:
            if platform not in self._backends:
                self._backends[platform] = open_backend(platform, self.workspace.config, workspace=self.workspace)
            return self._backends[platform]

    def receive(self, platform: str, headers: dict[str, str], body: bytes) -> int:
        """Verify, translate and store one delivery; returns how many labels were new."""
        labels = self.backend(platform).parse_webhook(headers, body)
        return store_labels(self.workspace.ledger, labels)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self.workspace.close()


def create_app(root: str | os.PathLike) -> Any:
    """The FastAPI app serving the workspace at ``root``."""
    fastapi = require("fastapi", "serve")
    from fastapi.responses import JSONResponse

    receiver = Receiver(Path(root))
    app = fastapi.FastAPI(title="rlthf_plugin", version="0.1.0")
    app.state.receiver = receiver

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/{platform}")
    async def webhook(platform: str, request: fastapi.Request) -> Any:
        if platform not in BACKENDS:
            return JSONResponse({"detail": f"unknown platform '{platform}'"}, status_code=404)
        body = await request.body()
        try:
            new = receiver.receive(platform, {k.lower(): v for k, v in request.headers.items()}, body)
        except WebhookAuthError as e:
            log.warning("rejected %s webhook: %s", platform, e.message)
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        except RlthfError as e:
            log.warning("bad %s webhook: %s", platform, e.message)
            return JSONResponse({"detail": e.message}, status_code=400)
        return {"stored": new}

    @app.on_event("shutdown")
    def _close() -> None:
        receiver.close()

    return app

"""The webhook service: receivers for Label Studio and Argilla over one workspace, the
worker that runs the loop by itself, ``/health``, Prometheus ``/metrics`` and Label Studio's
ML-backend API under ``/ml`` (:mod:`rlthf_plugin.service.ml_backend`).

Endpoints are thin (STYLE rule 13): verify the delivery, translate it with the
platform's adapter, store the labels through :func:`rlthf_plugin.loop.sync.store_labels` (the
same path as pull, so a lost webhook is repaired by the next pull), wake the worker,
return. With platforms given (``rlthf serve --backend ...``) a
:class:`rlthf_plugin.service.worker.Worker` runs the iterations (see that module).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the handlers' annotations
# at run time, and ``fastapi.Request`` is only a local name inside create_app.
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from ..backends import BACKENDS, LabelingBackend
from ..errors import BadWebhookError, RlthfError, WebhookAuthError, one_line, require
from .adapters import Adapters
from .metrics import Metrics
from ..loop.sync import store_labels
from ..store.ledger import LedgerError, ReplayedDelivery
from ..workspace import Workspace

log = logging.getLogger(__name__)


class Receiver:
    """Holds the workspace and one adapter per platform, created on first use."""

    def __init__(self, root: str | os.PathLike):
        self.workspace = Workspace.open(root)
        self.adapters = Adapters(self.workspace)

    def backend(self, platform: str) -> LabelingBackend:
        return self.adapters.get(platform)

    def receive(self, platform: str, headers: dict[str, str], body: bytes) -> int:
        """Verify, translate and store one delivery; returns how many labels were new.

        A delivery id (Argilla's ``webhook-id``) is remembered in the same transaction as
        the labels: a replay is refused, and a delivery whose store failed is stored when
        the sender retries it.
        """
        backend = self.backend(platform)
        delivery_id = getattr(backend, "delivery_id", None)
        delivery = delivery_id(headers) if delivery_id is not None else None
        labels = backend.parse_webhook(headers, body)
        ledger = self.workspace.ledger
        if delivery is not None and ledger.delivery_seen(delivery):
            raise WebhookAuthError(f"replayed delivery {delivery}")
        try:
            return store_labels(ledger, labels, delivery=delivery)
        except ReplayedDelivery as e:
            raise WebhookAuthError(f"replayed delivery {delivery}") from e

    def ledger_ok(self) -> tuple[bool, str]:
        return self.workspace.ledger.ping()

    def close(self) -> None:
        self.adapters.close()
        self.workspace.close()


def create_app(root: str | os.PathLike, *, backends: Sequence[str] = (), ml_backend: bool = True) -> Any:
    """The FastAPI app serving the workspace at ``root``.

    ``backends`` (default ``[serve] backends``) are the platforms the worker runs the loop
    on; without any, the app only receives webhooks. ``ml_backend`` mounts Label Studio's
    ML-backend API under ``/ml`` (:mod:`rlthf_plugin.service.ml_backend`): the current reward
    model's preference as a prediction on any task.
    """
    fastapi = require("fastapi", "serve")
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, PlainTextResponse

    from .worker import Worker, parse_platforms

    receiver = Receiver(Path(root))
    metrics = Metrics()
    platforms = parse_platforms(list(backends) or receiver.workspace.config.serve.backends)
    worker = Worker(receiver.workspace, platforms, metrics=metrics) if platforms else None
    app = fastapi.FastAPI(title="rlthf_plugin", version="0.1.0")
    app.state.receiver, app.state.metrics, app.state.worker = receiver, metrics, worker
    if ml_backend:
        from .ml_backend import mount

        app.state.reward_model = mount(app, receiver.workspace)

    @app.get("/health")
    def health() -> Any:
        """200 when the ledger answers and the worker (if any) works; else 503 with the reason."""
        ok, detail = receiver.ledger_ok()
        reason = None if ok else f"the ledger does not answer: {detail}"
        if reason is None and worker is not None:
            reason = worker.problem()
        body: dict[str, Any] = {"status": "ok" if reason is None else "error", "reason": reason, "ledger": detail,
                                "worker": worker.status() if worker else None}
        return JSONResponse(body, status_code=200 if reason is None else 503)

    @app.get("/metrics")
    def prometheus() -> Any:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/webhooks/{platform}")
    async def webhook(platform: str, request: fastapi.Request) -> Any:
        if platform not in BACKENDS:
            return JSONResponse({"detail": f"unknown platform '{platform}'"}, status_code=404)
        metrics.inc("rlthf_webhooks_received_total", platform=platform)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:  # in a thread: a slow ledger write must not stall the other deliveries
            new = await run_in_threadpool(receiver.receive, platform, headers, body)
        except WebhookAuthError as e:
            log.warning("rejected %s webhook: %s", platform, e.message)
            metrics.inc("rlthf_webhooks_rejected_total", platform=platform, reason="auth")
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        except BadWebhookError as e:  # authenticated, wrong shape: retrying would not help
            log.warning("bad %s webhook: %s", platform, e.message)
            metrics.inc("rlthf_webhooks_rejected_total", platform=platform, reason="bad")
            return JSONResponse({"detail": one_line(e.message)}, status_code=400)
        except (RlthfError, LedgerError) as e:  # the platform or the ledger failed: retry later
            message = e.message if isinstance(e, RlthfError) else f"the ledger could not store it: {type(e).__name__}"
            log.error("%s webhook not stored: %s", platform, one_line(str(e)))
            metrics.inc("rlthf_webhooks_failed_total", platform=platform)
            return JSONResponse({"detail": one_line(message)}, status_code=503)
        if new:
            metrics.inc("rlthf_labels_stored_total", new, platform=platform, path="webhook")
            if worker is not None:
                worker.wake()
        return {"stored": new}

    @app.on_event("startup")
    def _start() -> None:
        if worker is not None:
            worker.start()

    @app.on_event("shutdown")
    def _close() -> None:
        if worker is not None:
            worker.stop()
        receiver.close()

    return app

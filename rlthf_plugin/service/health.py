"""``/health`` as public state codes: what is wrong, never why in detail.

The answer is ``{"status": CODE, "last_success": ISO time or null, "loop": LOOP}``: ``ok``,
``ledger_unavailable`` (the database does not answer), ``lease_lost`` (the worker lost
the iteration lease), ``platform_unreachable`` (a platform failed the worker's last step
or its last reconciliation), ``worker_stopped`` (the worker thread ended) or
``worker_error`` (any other failed step). ``loop`` says whether the worker still runs the
loop: ``running``, ``off`` (no worker: serve only receives webhooks) or why it pushes no more
batches (``target_reached``, ``max_iterations``, ``nothing_asked``: see
:data:`rlthf_plugin.service.worker.FINISHED`); a finished loop is no error (the status
stays ``ok``). Exception texts, URLs and upstream bodies go to the log when the state
changes and to the ledger (``sync_state`` key :data:`HEALTH_KEY`, with the loop's detail,
e.g. the target reached), where ``rlthf status`` shows them, not to whoever asks the port.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..store.ledger import LedgerError, now

log = logging.getLogger(__name__)

#: The ``sync_state`` key holding the service's last health details (``rlthf status``).
HEALTH_KEY = "service:health"
CODES = ("ok", "ledger_unavailable", "lease_lost", "platform_unreachable", "worker_stopped", "worker_error")
#: ``loop`` codes besides the worker's ``finished`` ones.
LOOP_CODES = ("running", "off")


class Health:
    """The service's state: :meth:`check` gives (code, detail); :meth:`answer` the public body."""

    def __init__(self, ledger: Any, worker: Any = None):
        self.ledger = ledger
        self.worker = worker
        self.last_success: Any = None  # the last stored delivery or successful worker step
        self._reported: tuple[str, str, str] | None = None
        self._lock = threading.Lock()

    def success(self) -> None:
        self.last_success = now()

    def check(self) -> tuple[str, str]:
        """(code, detail): the code is public, the detail is for the log and ``rlthf status``."""
        ok, detail = self.ledger.ping()
        if not ok:
            return "ledger_unavailable", detail
        w = self.worker
        if w is None:
            return "ok", ""
        if not w.alive:
            return "worker_stopped", "the worker thread is not running"
        if w.error:
            return w.error_code or "worker_error", w.error
        failed = {p: r["error"] for p, r in w.last_reconcile.items() if "error" in r}
        if failed:
            return "platform_unreachable", "; ".join(f"{p}: {e}" for p, e in sorted(failed.items()))
        return "ok", ""

    def loop(self) -> tuple[str, str]:
        """(code, detail) of the loop: ``off`` without a worker, ``running``, or the worker's
        ``finished`` code with its state (e.g. the reached target) as the detail."""
        w = self.worker
        if w is None:
            return "off", ""
        finished = getattr(w, "finished", None)
        return (finished, str(getattr(w, "state", ""))) if finished else ("running", "")

    def answer(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of ``/health``; a changed state is logged and recorded."""
        code, detail = self.check()
        loop, loop_detail = self.loop()
        latest = max((t for t in (self.last_success, getattr(self.worker, "last_success", None)) if t), default=None)
        self._report(code, detail, latest, loop, loop_detail)
        body = {"status": code, "last_success": latest.isoformat() + "Z" if latest else None, "loop": loop}
        return (200 if code == "ok" else 503), body

    def _report(self, code: str, detail: str, latest: Any, loop: str = "off", loop_detail: str = "") -> None:
        with self._lock:
            if self._reported == (code, detail, loop):
                return
            self._reported = code, detail, loop
        (log.info if code == "ok" else log.error)("service health: %s%s; loop: %s", code,
                                                  f" ({detail})" if detail else "", loop)
        if code == "ledger_unavailable":
            return
        try:
            self.ledger.set_state(HEALTH_KEY, {"status": code, "detail": detail, "at": now().isoformat() + "Z",
                                               "last_success": latest.isoformat() + "Z" if latest else None,
                                               "loop": loop, "loop_detail": loop_detail})
        except LedgerError as e:
            log.warning("could not record the service health: %s", type(e).__name__)


__all__ = ["CODES", "HEALTH_KEY", "LOOP_CODES", "Health"]

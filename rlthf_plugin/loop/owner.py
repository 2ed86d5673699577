"""One owner per iteration: the ``iteration`` lease, held by whoever moves an iteration.

Every entry point that changes an iteration (the service's worker, ``rlthf select``,
``label``, ``run`` and ``push`` of a batch) runs inside ``with IterationOwner(ledger) as
owner`` and hands ``owner`` to the steps it calls:

- entering takes the lease or raises :class:`~rlthf_plugin.errors.LeaseHeldError` naming
  the holder (nothing is written); a holder that was a process of this host and has exited
  (killed mid-step) is taken over at once instead of after its time to live;
- a heartbeat thread renews the lease every ``ttl / 3`` seconds; when a renewal fails (the
  lease was taken over, or the database raised) the owner is *lost*: the heartbeat ends,
  :attr:`IterationOwner.reason` says why and the next :meth:`check` raises
  :class:`~rlthf_plugin.errors.LeaseLostError`;
- every write of a step is fenced: :meth:`fence` runs inside the write's own transaction and
  rolls it back unless this owner still holds an unexpired lease, so an owner that paused
  past its lease (and was replaced) can never write over its successor.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import LeaseHeldError, LeaseLostError
from ..store import lock
from ..store.ledger import Ledger

log = logging.getLogger(__name__)

#: The lease's name in the ledger.
LEASE = "iteration"
#: The lease a running ``rlthf serve`` holds while it lives: one service per workspace.
SERVE_LEASE = "serve"
#: Default time to live of the lease, seconds ([serve] lease_seconds): a killed owner blocks no longer.
TTL = 60.0


class IterationOwner:
    """The ``iteration`` lease held for the duration of a ``with`` block.

    ``holder`` names this process (default: host, pid and a random suffix); ``ttl`` is
    the lease's time to live in seconds; ``heartbeat=False`` never renews it (tests).
    ``name`` is the lease (default :data:`LEASE`; :data:`SERVE_LEASE` is the one a running
    ``rlthf serve`` holds for its whole life, so a second one on the workspace exits).
    """

    def __init__(self, ledger: Ledger, *, holder: str | None = None, ttl: float = TTL, heartbeat: bool = True,
                 name: str = LEASE):
        self.ledger, self.holder, self.ttl, self.name = ledger, holder or lock.holder_id(), float(ttl), name
        self._heartbeat = heartbeat
        self._done = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None
        self.reason: str | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> "IterationOwner":
        if not lock.acquire(self.ledger, self.name, self.holder, ttl=self.ttl):
            current = lock.holder_of(self.ledger, self.name)
            # A killed process of this host cannot renew: take its lease now, not when it expires.
            if not (current and lock.dead_local_holder(current)
                    and lock.take_over(self.ledger, self.name, current, self.holder, ttl=self.ttl)):
                raise LeaseHeldError(self.name, current)
            log.warning("took the %s lease over from %s, a process of this host that has exited", self.name, current)
        self._done.clear()
        self._lost.clear()
        self.reason = None
        if self._heartbeat:
            self._thread = threading.Thread(target=self._beat, name="rlthf-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        lock.release(self.ledger, self.name, self.holder)  # only ours: a successor's lease stays

    def _beat(self) -> None:
        while not self._done.wait(self.ttl / 3):
            try:
                renewed = lock.renew(self.ledger, self.name, self.holder, ttl=self.ttl)
            except Exception as e:  # noqa: BLE001 - any failure ends the owner, said in reason
                self._lose(f"renewing the lease failed: {type(e).__name__}: {e}")
                return
            if not renewed:
                self._lose(f"the lease was taken over by {lock.holder_of(self.ledger, self.name) or 'nobody'}")
                return

    def _lose(self, reason: str) -> None:
        self.reason = reason
        self._lost.set()
        log.error("iteration owner %s: %s; its step stops", self.holder, reason)

    # -- state ----------------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def heartbeat_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when the heartbeat lost the lease."""
        if self._lost.is_set():
            raise LeaseLostError(self.name, self.reason or "lost")

    def fence(self, conn: Any) -> None:
        """Inside a write transaction: raise :class:`LeaseLostError` (rolling the write back)
        unless this owner holds the lease, unexpired, at this moment."""
        self.check()
        lock.fence(conn, self.name, self.holder)


@contextmanager
def owned(ledger: Ledger, owner: IterationOwner | None) -> Iterator[IterationOwner]:
    """``owner`` when the caller holds one, else a fresh owner for the block."""
    if owner is not None:
        yield owner
        return
    with IterationOwner(ledger) as fresh:
        yield fresh

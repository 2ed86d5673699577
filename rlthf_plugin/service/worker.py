"""The service's worker: runs the RLTHF loop on labeling platforms without a person.

Each iteration moves through states kept in the ``iterations`` table, each written before
and after its step, so a service killed at any point resumes where it stopped::

    selecting -> selected -> pushing -> pushed -> labeled -> (next iteration) selecting ...

- ``selecting``: :func:`rlthf_plugin.loop.iteration.select_iteration` is training and deciding; a
  crash leaves this state and the step is redone from scratch (its decisions are replaced).
- ``selected`` / ``pushing``: the asked tasks go to every configured platform through
  :func:`rlthf_plugin.loop.sync.push`, which looks the tasks up on the platform first, so a push
  repeated after a crash creates no task twice. ``asked`` (an iteration recorded by hand)
  is pushed the same way.
- ``pushed``: waiting until every pushed task of the iteration has its required labels on
  its platform (1 on Label Studio, ``[argilla] min_submitted`` on Argilla); labels come by
  webhook or by the reconciliation pull (:func:`rlthf_plugin.loop.sync.store_labels`, idempotent).
- ``labeled``: the batch's labels are tied to the iteration and its AI-error precision is
  recorded; the next iteration starts (unless the iteration asked nothing, or
  ``[serve] max_iterations`` is reached).

One process at a time moves an iteration: the steps run as the iteration's owner
(:class:`rlthf_plugin.loop.owner.IterationOwner`, the ledger lease ``iteration``), renewed
by a heartbeat while a step runs, with every write fenced by the lease, so two services on
one PostgreSQL ledger (or a service and `rlthf select`) never run the same step twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import sqlalchemy as sa

from ..store import ledger as L
from ..store import lock
from ..loop import sync
from ..backends import BACKENDS, LabelingBackend, open_backend
from ..config import Config
from ..errors import BackendError, ConfigError, LeaseHeldError, LeaseLostError, RlthfError
from ..loop.iteration import SELECTING, select_iteration
from ..loop.owner import LEASE, IterationOwner
from ..loop.oracle import batch_report, evaluate
from .metrics import Metrics
from ..models.reward import RewardModel
from ..pairs import A, B, majority
from ..loop.tasks import asked_tasks
from ..workspace import Workspace

log = logging.getLogger(__name__)

#: Iteration states in the order the worker moves through them.
STATES = ("selecting", "selected", "pushing", "pushed", "labeled")
#: States whose tasks still have to be pushed (``asked``: an iteration recorded by hand).
TO_PUSH = ("selected", "pushing", "asked")


def parse_platforms(values: Sequence[str] | str) -> list[str]:
    """Platform names from ``--backend`` values or ``[serve] backends`` (comma-separated)."""
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for name in (x.strip() for x in item.split(",")):
            if not name:
                continue
            if name not in BACKENDS:
                raise ConfigError(f"unknown backend '{name}' in [serve] backends / --backend; "
                                  f"known: {', '.join(sorted(BACKENDS))}")
            if name not in out:
                out.append(name)
    return out


def required_labels(platform: str, config: Config) -> int:
    """Labels a task needs before it counts as done: Argilla's ``min_submitted``, else 1."""
    return max(1, int(config.argilla.min_submitted)) if platform == "argilla" else 1


def asked_pair_ids(ledger: L.Ledger, iteration: int) -> list[str]:
    with ledger.engine.connect() as conn:
        q = sa.select(L.decisions.c.pair_id).where(L.decisions.c.iteration == iteration,
                                                   L.decisions.c.action == "ask")
        return sorted(conn.execute(q).scalars())


def label_counts(ledger: L.Ledger, platform: str, pair_ids: Sequence[str]) -> dict[str, int]:
    """pair id -> labels (not deleted) stored from ``platform``."""
    t = L.human_labels
    out: dict[str, int] = {}
    with ledger.engine.connect() as conn:
        for chunk in L.iter_chunks(list(pair_ids), 900):
            q = (sa.select(t.c.pair_id, sa.func.count()).where(t.c.platform == platform, t.c.deleted.is_(False),
                                                               t.c.pair_id.in_(list(chunk))).group_by(t.c.pair_id))
            out.update(dict(conn.execute(q).all()))
    return out


def latest_row(ledger: L.Ledger) -> dict | None:
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(L.iterations).order_by(L.iterations.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def set_state(ledger: L.Ledger, iteration: int, state: str, *, stats: dict | None = None,
              finished: bool = False, owner: IterationOwner | None = None) -> None:
    values: dict[str, Any] = {"state": state}
    if stats is not None:
        values["stats"] = stats
    if finished:
        values["finished_at"] = L.now()
    with ledger.engine.begin() as conn:
        if owner is not None:
            owner.fence(conn)
        conn.execute(L.iterations.update().where(L.iterations.c.id == iteration).values(**values))


class Worker:
    """Moves the latest iteration on, one step at a time, in a background thread.

    ``platforms`` are backend names (``label-studio``, ``argilla``); the iteration's asked
    tasks go to each of them and the batch is complete when every pushed task has its
    required labels on its platform. ``factory`` makes reward models (default: the
    workspace's configured kind).
    """

    def __init__(self, workspace: Workspace, platforms: Sequence[str], *, metrics: Metrics | None = None,
                 factory: Callable[[], RewardModel] | None = None, holder: str | None = None):
        self.workspace = workspace
        self.ledger = workspace.ledger
        self.config = workspace.config
        self.platforms = parse_platforms(platforms)
        if not self.platforms:
            raise ConfigError("the worker needs at least one platform: --backend label-studio|argilla")
        self.metrics = metrics or Metrics()
        self.factory = factory
        self.holder = holder or lock.holder_id()
        self._backends: dict[str, LabelingBackend] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.owner: IterationOwner | None = None
        self._next_reconcile = 0.0
        self._reconcile_due: set[str] = set()
        self.state = "starting"
        self.error: str | None = None
        self.last_reconcile: dict[str, Any] = {}
        self.pending: int | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "Worker":
        self._thread = threading.Thread(target=self.run, name="rlthf-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    def wake(self) -> None:
        """Check the batch now (a webhook stored a label)."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def problem(self) -> str | None:
        """Why the worker is not doing its job (None when it is): its thread stopped, or its
        last step failed (a lost iteration lease included); shown by /health with a 503."""
        if not self.alive:
            return "the worker thread is not running"
        if self.error:
            return f"the worker's last step failed: {self.error}"
        return None

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "alive": self.alive, "platforms": self.platforms, "error": self.error,
                "pending_tasks": self.pending, "last_reconcile": self.last_reconcile}

    def run(self) -> None:
        """The thread's body: a step, then sleep until woken or ``poll_seconds`` pass."""
        while not self._stop.is_set():
            try:
                self.tick()
                self.error = None
            except RlthfError as e:  # a user-fixable problem: shown on /health, retried next tick
                log.error("worker: %s", e.message)
                self.error, self.state = e.message, "error"
            except Exception as e:  # noqa: BLE001 - keep serving; the traceback goes to the log
                log.exception("worker step failed")
                self.error, self.state = f"{type(e).__name__}: {e}", "error"
            self._wake.wait(self.config.serve.poll_seconds)
            self._wake.clear()

    def backend(self, platform: str) -> LabelingBackend:
        if platform not in self._backends:
            self._backends[platform] = open_backend(platform, self.config, workspace=self.workspace)
        return self._backends[platform]

    # -- one tick -------------------------------------------------------------------------
    def tick(self) -> None:
        """Reconcile when due, then move the latest iteration as far as it can go."""
        if time.monotonic() >= self._next_reconcile:
            self._reconcile_due.update(self.platforms)
            minutes = self.config.serve.reconcile_minutes
            self._next_reconcile = time.monotonic() + minutes * 60 if minutes > 0 else float("inf")
        if self._reconcile_due:
            self.reconcile(sorted(self._reconcile_due))
        self.advance()

    def reconcile(self, platforms: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """Pull platforms (incrementally): labels whose webhooks were lost arrive here.

        A platform nothing was pushed to yet is skipped; one that fails (server down) is
        retried at the next tick, and the loop goes on meanwhile.
        """
        self.state = "reconciling"
        out = {}
        for platform in platforms or self.platforms:
            if not self._pushed_to(platform):
                self._reconcile_due.discard(platform)
                continue
            try:
                read, new = sync.pull(self.ledger, self.backend(platform))
            except BackendError as e:
                log.warning("reconciling %s failed (retried at the next check): %s", platform, e.message)
                self.metrics.inc("rlthf_reconciliations_total", platform=platform, outcome="error")
                self.last_reconcile[platform] = {"at": L.now().isoformat(), "error": e.message}
                continue
            self._reconcile_due.discard(platform)
            out[platform] = (read, new)
            self.metrics.inc("rlthf_reconciliations_total", platform=platform, outcome="ok")
            if new:
                self.metrics.inc("rlthf_labels_stored_total", new, platform=platform, path="pull")
            self.last_reconcile[platform] = {"at": L.now().isoformat(), "read": read, "new": new}
            log.info("reconciled %s: read %d label(s), %d new", platform, read, new)
        return out

    def _pushed_to(self, platform: str) -> bool:
        with self.ledger.engine.connect() as conn:
            return conn.execute(sa.select(L.pushes.c.pair_id).where(L.pushes.c.platform == platform).limit(1)).first() \
                is not None

    def advance(self) -> None:
        """Run steps as the iteration's owner until one has to wait. A lost lease (taken
        over, or its heartbeat failed) ends the owner: the step stops, its last write is
        rolled back, the error shows on /health, and the next tick asks for the lease again."""
        try:
            with IterationOwner(self.ledger, holder=self.holder, ttl=self.config.serve.lease_seconds) as owner:
                self.owner = owner
                try:
                    while not self._stop.is_set() and self.step():
                        pass
                finally:
                    self.owner = None
        except LeaseHeldError as e:
            self.state = f"waiting for the iteration lease (held by {e.holder})"

    def _check_lease(self) -> None:
        if self.owner is None:
            raise LeaseLostError(LEASE, "not the owner")
        self.owner.check()

    def step(self) -> bool:
        """One step of the latest iteration; False when it has to wait (or is finished)."""
        row = latest_row(self.ledger)
        if row is not None:
            self._gauge(row)
        if row is None or row["state"] == "labeled":
            return self._next_iteration(row)
        state = row["state"]
        if state in SELECTING:
            return self._select()
        if state in TO_PUSH:
            return self._push(row)
        if state == "pushed":
            return self._collect(row)
        raise RlthfError(f"iteration {row['id']} is in state '{state}', which the worker does not know "
                         f"(known: {', '.join(STATES)}, asked)")

    # -- the steps --------------------------------------------------------------------------
    def _next_iteration(self, row: dict | None) -> bool:
        nxt = 0 if row is None else row["id"] + 1
        limit = self.config.serve.max_iterations
        if row is not None and not asked_pair_ids(self.ledger, row["id"]):
            self.state = f"finished: iteration {row['id']} asked nothing"
            return False
        if limit and nxt >= limit:
            self.state = f"finished: [serve] max_iterations = {limit} reached"
            return False
        return self._select()

    def _select(self) -> bool:
        self._check_lease()
        self.state = "selecting"
        self.metrics.inc("rlthf_iterations_started_total")
        rep = select_iteration(self.ledger, self.config, factory=self.factory, owner=self.owner)
        log.info("iteration %d selected: %s", rep.iteration, rep.counts)
        return True

    def _push(self, row: dict) -> bool:
        it = row["id"]
        tasks = asked_tasks(self.ledger, it)
        stats = dict(row["stats"] or {})
        pushes = {p: dict(v) for p, v in (stats.get("push") or {}).items()}
        for platform in self.platforms:
            pushes[platform] = {**pushes.get(platform, {}), "planned": len(tasks), "state": "pushing"}
        stats["push"] = pushes
        self._check_lease()
        self.state = f"pushing iteration {it}"
        set_state(self.ledger, it, "pushing", stats=stats, owner=self.owner)
        for platform in self.platforms:
            if tasks:
                self._check_lease()
                backend = self.backend(platform)
                report = sync.push(self.ledger, backend, tasks, iteration=it, owner=self.owner,
                                   allow_duplicate_targets=len(self.platforms) > 1)
                pushes[platform].update(target=backend.target, created=report.created, existing=report.existing,
                                        failed=len(report.failed))
            pushes[platform]["state"] = "pushed"
            set_state(self.ledger, it, "pushing", stats=stats, owner=self.owner)
        set_state(self.ledger, it, "pushed", stats=stats, owner=self.owner)
        log.info("iteration %d pushed: %s", it, pushes)
        return True

    def progress(self, row: dict) -> dict[str, list[str]]:
        """platform -> pushed pair ids of the iteration still short of their required labels."""
        asked = asked_pair_ids(self.ledger, row["id"])
        recorded = (row["stats"] or {}).get("push") or {}
        out = {}
        for platform in self.platforms:
            target = (recorded.get(platform) or {}).get("target") or self.backend(platform).target
            known = self.ledger.pushed(platform, target)
            pushed = [p for p in asked if p in known]
            counts = label_counts(self.ledger, platform, pushed)
            need = required_labels(platform, self.config)
            out[platform] = [p for p in pushed if counts.get(p, 0) < need]
        return out

    def _collect(self, row: dict) -> bool:
        pending = self.progress(row)
        self.pending = sum(len(v) for v in pending.values())
        self.metrics.set("rlthf_iteration_pending_tasks", self.pending)
        if self.pending:
            self.state = f"waiting for labels: {self.pending} task(s) of iteration {row['id']}"
            return False
        self._check_lease()
        self.finish_batch(row)
        return True

    def finish_batch(self, row: dict) -> None:
        """Tie the batch's labels to the iteration, record its AI-error precision, mark it labeled."""
        it = row["id"]
        asked = asked_pair_ids(self.ledger, it)
        t = L.human_labels
        votes: dict[str, list[str]] = defaultdict(list)
        with self.ledger.engine.begin() as conn:
            if self.owner is not None:
                self.owner.fence(conn)
            for chunk in L.iter_chunks(asked, 900):
                where = (t.c.platform.in_(self.platforms), t.c.pair_id.in_(list(chunk)), t.c.deleted.is_(False))
                conn.execute(t.update().where(*where, t.c.iteration.is_(None)).values(iteration=it))
                for pid, label in conn.execute(sa.select(t.c.pair_id, t.c.label).where(*where)):
                    votes[pid].append(label)
        answers = {}
        for pid in asked:
            m = majority(votes.get(pid, []))
            answers[pid] = {A: A, B: B, None: "skip"}.get(m.label, "tie")
        report = batch_report(self.ledger, it, answers)
        ev = evaluate(self.ledger, self.config)
        stats = {**(row["stats"] or {}),
                 "batch": {"asked": report.asked, "answered": report.answered, "ai_errors": report.ai_errors,
                           "precision": report.precision},
                 "eval": ev if ev["pairs"] else None}
        set_state(self.ledger, it, "labeled", stats=stats, finished=True, owner=self.owner)
        self.pending = 0
        log.info("iteration %d labeled: %d answered, AI-error precision %s", it, report.answered, report.precision)

    def _gauge(self, row: dict) -> None:
        self.metrics.set("rlthf_iteration", row["id"])
        for state in (*STATES, "asked"):
            current = row["state"] == state or (state == "selecting" and row["state"] in SELECTING)
            self.metrics.set("rlthf_iteration_state", 1.0 if current else 0.0, state=state)

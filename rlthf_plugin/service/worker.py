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
  ``[serve] max_iterations`` is reached, or with ``[serve] stop_when = "target"`` once the
  curated accuracy's lower bound reaches ``selection.target_accuracy``: /health says so in
  ``loop`` (:data:`FINISHED`) and the log with a warning; the quality gauges of /metrics are
  set after each labeled iteration).

One process at a time moves an iteration: the steps run as the iteration's owner
(:class:`rlthf_plugin.loop.owner.IterationOwner`, the ledger lease ``iteration``), renewed
by a heartbeat while a step runs, with every write fenced by the lease, so two services on
one PostgreSQL ledger (or a service and `rlthf select`) never run the same step twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..loop import sync
from ..backends import BACKENDS, LabelingBackend
from ..errors import BackendError, ConfigError, LeaseHeldError, LeaseLostError, RlthfError
from ..loop.cascade import cascade
from ..loop.escalation import spend
from ..loop.batch import required_labels
from ..loop.iteration import select_iteration
from ..loop.oracle import answer_of, close_batch
from ..loop.owner import LEASE, IterationOwner
from ..loop.quality import quality_summary
from .adapters import Adapters
from .metrics import Metrics
from ..models.reward import RewardModel
from ..loop.tasks import calibrated_asked_tasks
from ..store import lock
from ..store.iterations import asked_pair_ids, latest_row, set_iteration_state
from ..store.labels import claim_batch, label_counts
from ..store.ledger import LedgerError, now
from ..store.pushes import pushed_any
from ..vocab import SELECTING_STATES, IterationState
from ..workspace import Workspace

log = logging.getLogger(__name__)

S = IterationState
#: Iteration states in the order the worker moves through them.
STATES = (S.SELECTING, S.SELECTED, S.PUSHING, S.PUSHED, S.LABELED)
#: States whose tasks still have to be pushed (``asked``: an iteration recorded by hand).
TO_PUSH = (S.SELECTED, S.PUSHING, S.ASKED)
#: Why the worker pushes no more batches (its public ``finished`` code, ``loop`` in /health).
FINISHED = ("nothing_asked", "max_iterations", "target_reached")


def parse_platforms(values: Sequence[str] | str, *, also: Iterable[str] = ()) -> list[str]:
    """Platform names from ``--backend`` values or ``[serve] backends`` (comma-separated);
    ``also`` names platforms known besides :data:`~rlthf_plugin.backends.BACKENDS`."""
    items = [values] if isinstance(values, str) else list(values)
    known = set(BACKENDS) | set(also)
    out: list[str] = []
    for item in items:
        for name in (x.strip() for x in item.split(",")):
            if not name:
                continue
            if name not in known:
                raise ConfigError(f"unknown backend '{name}' in [serve] backends / --backend; "
                                  f"known: {', '.join(sorted(known))}")
            if name not in out:
                out.append(name)
    return out


class Worker:
    """Moves the latest iteration on, one step at a time, in a background thread.

    ``platforms`` are backend names (``label-studio``, ``argilla``); the iteration's asked
    tasks go to each of them and the batch is complete when every pushed task has its
    required labels on its platform. ``factory`` makes reward models (default: the
    workspace's configured kind). ``adapters`` are platform name -> an adapter already
    open (e.g. a :class:`~rlthf_plugin.backends.local.LocalBackend`); the others are opened
    from the config on first use.
    """

    def __init__(self, workspace: Workspace, platforms: Sequence[str], *, metrics: Metrics | None = None,
                 factory: Callable[[], RewardModel] | None = None, holder: str | None = None,
                 adapters: Mapping[str, LabelingBackend] | None = None):
        self.workspace = workspace
        self.ledger = workspace.ledger
        self.config = workspace.config
        self.platforms = parse_platforms(platforms, also=adapters or {})
        if not self.platforms:
            raise ConfigError("the worker needs at least one platform: --backend label-studio|argilla")
        self.metrics = metrics or Metrics()
        self.factory = factory
        self.holder = holder or lock.holder_id()
        self.adapters = Adapters(workspace, adapters)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.owner: IterationOwner | None = None
        self._next_reconcile = 0.0
        self._reconcile_due: set[str] = set()
        self.state = "starting"
        #: One of :data:`FINISHED` once the worker pushes no more batches, else None.
        self.finished: str | None = None
        self.error: str | None = None
        #: The public code of ``error`` (/health): lease_lost, platform_unreachable,
        #: ledger_unavailable or worker_error; None when the last step worked.
        self.error_code: str | None = None
        self.last_success: Any = None
        self.last_reconcile: dict[str, Any] = {}
        self.pending: int | None = None
        self._quality_of: int | None = None
        self._quality: dict[str, Any] | None = None

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
        self.adapters.close()

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
        return {"state": self.state, "finished": self.finished, "alive": self.alive, "platforms": self.platforms,
                "error": self.error,
                "pending_tasks": self.pending, "last_reconcile": self.last_reconcile}

    def run(self) -> None:
        """The thread's body: a step, then sleep until woken or ``poll_seconds`` pass."""
        while not self._stop.is_set():
            try:
                self.tick()
                self.error, self.error_code = None, None
                self.last_success = now()
            except RlthfError as e:  # a user-fixable problem: shown on /health, retried next tick
                log.error("worker: %s", e.message)
                self.error, self.state = e.message, "error"
                self.error_code = ("lease_lost" if isinstance(e, LeaseLostError) else
                                   "platform_unreachable" if isinstance(e, BackendError) else "worker_error")
            except Exception as e:
                log.exception("worker step failed")
                self.error, self.state = f"{type(e).__name__}: {e}", "error"
                self.error_code = "ledger_unavailable" if isinstance(e, LedgerError) else "worker_error"
            self._wake.wait(self.config.serve.poll_seconds)
            self._wake.clear()

    def backend(self, platform: str) -> LabelingBackend:
        return self.adapters.get(platform)

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
            if not pushed_any(self.ledger, platform):
                self._reconcile_due.discard(platform)
                continue
            try:
                read, new = sync.pull(self.ledger, self.backend(platform))
            except BackendError as e:
                log.warning("reconciling %s failed (retried at the next check): %s", platform, e.message)
                self.metrics.inc("rlthf_reconciliations_total", platform=platform, outcome="error")
                self.last_reconcile[platform] = {"at": now().isoformat(), "error": e.message}
                continue
            self._reconcile_due.discard(platform)
            out[platform] = (read, new)
            self.metrics.inc("rlthf_reconciliations_total", platform=platform, outcome="ok")
            if new:
                self.metrics.inc("rlthf_labels_stored_total", new, platform=platform, path="pull")
            self.last_reconcile[platform] = {"at": now().isoformat(), "read": read, "new": new}
            log.info("reconciled %s: read %d label(s), %d new", platform, read, new)
        return out

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

    def _fence(self, conn) -> None:
        """The owner's fence for a write of a step (inside its transaction)."""
        if self.owner is None:
            raise LeaseLostError(LEASE, "not the owner")
        self.owner.fence(conn)

    def _check_lease(self) -> None:
        if self.owner is None:
            raise LeaseLostError(LEASE, "not the owner")
        self.owner.check()

    def step(self) -> bool:
        """One step of the latest iteration; False when it has to wait (or is finished)."""
        row = latest_row(self.ledger)
        if row is not None:
            self._gauge(row)
        if row is None or row["state"] == S.LABELED:
            return self._next_iteration(row)
        state = row["state"]
        if state in SELECTING_STATES:
            return self._select()
        if state in TO_PUSH:
            return self._push(row)
        if state == S.PUSHED:
            return self._collect(row)
        raise RlthfError(f"iteration {row['id']} is in state '{state}', which the worker does not know "
                         f"(known: {', '.join(s.value for s in STATES)}, asked)")

    # -- the steps --------------------------------------------------------------------------
    def _next_iteration(self, row: dict | None) -> bool:
        nxt = 0 if row is None else row["id"] + 1
        limit = self.config.serve.max_iterations
        if row is not None:  # the gauges of the labeled iteration, whatever comes next
            self._quality_gauges(row["id"])
        if row is not None and not asked_pair_ids(self.ledger, row["id"]):
            self.state, self.finished = f"finished: iteration {row['id']} asked nothing", "nothing_asked"
            return False
        if limit and nxt >= limit:
            self.state, self.finished = f"finished: [serve] max_iterations = {limit} reached", "max_iterations"
            return False
        if row is not None and self._target_reached():
            return False
        self.finished = None
        return self._select()

    def _quality_gauges(self, iteration: int) -> None:
        """The quality after a labeled iteration (computed once per iteration) on /metrics."""
        if self._quality_of != iteration:
            self._quality_of, self._quality = iteration, quality_summary(self.ledger, self.config)
            q = self._quality
            if q.get("available"):
                for bound in ("estimate", "low", "high"):
                    self.metrics.set("rlthf_curated_accuracy", q["curated_accuracy"][bound], bound=bound)
                for source, count in q["split"].items():
                    self.metrics.set("rlthf_curated_pairs", count, source=source)
                if q["stop"]["errors_fixed_per_100_labels"] is not None:  # null: not known yet
                    self.metrics.set("rlthf_errors_fixed_per_100_labels", q["stop"]["errors_fixed_per_100_labels"])
                self.metrics.set("rlthf_stop", 1.0 if q["stop"]["stop"] else 0.0)

    def _target_reached(self) -> bool:
        """With ``[serve] stop_when = "target"``, True (and said in the state and ``finished``,
        so /health shows it, and in the log) once the labeled iteration's curated accuracy
        lower bound reaches ``selection.target_accuracy``."""
        q = self._quality or {}
        if self.config.serve.stop_when != "target" or not (q.get("stop") or {}).get("target_reached"):
            return False
        state = f"finished: [serve] stop_when = target: {q['stop']['reason']}"
        if self.state != state:  # a warning: shown at serve's default log level
            log.warning("the worker stops pushing batches ([serve] stop_when = target): %s", q["stop"]["reason"])
        self.state, self.finished = state, "target_reached"
        return True

    def _select(self) -> bool:
        self._check_lease()
        self.state = S.SELECTING.value
        self.metrics.inc("rlthf_iterations_started_total")
        rep = select_iteration(self.ledger, self.config, factory=self.factory, owner=self.owner)
        log.info("iteration %d selected: %s", rep.iteration, rep.counts)
        self._spend_gauges()
        return True

    def _spend_gauges(self) -> None:
        """The spend at [cost] prices and the errors found per unit of cost, on /metrics."""
        if not (self.config.escalation.judges or self.config.cost.human_label):
            return
        rows = spend(self.ledger, self.config)
        if not rows:
            return
        self.metrics.set("rlthf_spend", sum(r["human_cost"] for r in rows), kind="human")
        calls: dict[str, int] = {}
        for r in rows:
            for judge, n in r["judge_calls"].items():
                calls[judge] = calls.get(judge, 0) + n
        prices = {s.name: s.call_price for s in cascade(self.config)}
        for judge, n in calls.items():
            self.metrics.set("rlthf_escalation_calls_total", n, judge=judge)
            self.metrics.set("rlthf_spend", n * prices.get(judge, 0.0), kind=f"judge:{judge}")
        done = [r for r in rows if r["iteration"] != "next"]
        self.metrics.set("rlthf_spend_latest_iteration", done[-1]["cost"] if done else 0.0)
        total = sum(r["cost"] for r in rows)
        self.metrics.set("rlthf_errors_per_cost", sum(r["errors_found"] for r in rows) / total if total else 0.0)

    def _push(self, row: dict) -> bool:
        it = row["id"]
        tasks = calibrated_asked_tasks(self.ledger, self.config, it)
        stats = dict(row["stats"] or {})
        pushes = {p: dict(v) for p, v in (stats.get("push") or {}).items()}
        for platform in self.platforms:
            pushes[platform] = {**pushes.get(platform, {}), "planned": len(tasks), "state": S.PUSHING.value}
        stats["push"] = pushes
        self._check_lease()
        self.state = f"pushing iteration {it}"
        set_iteration_state(self.ledger, it, S.PUSHING, stats=stats, fence=self._fence)
        for platform in self.platforms:
            if tasks:
                self._check_lease()
                backend = self.backend(platform)
                report = sync.push(self.ledger, backend, tasks, iteration=it, owner=self.owner,
                                   allow_duplicate_targets=len(self.platforms) > 1)
                pushes[platform].update(target=backend.target, created=report.created, existing=report.existing,
                                        failed=len(report.failed))
            pushes[platform]["state"] = S.PUSHED.value
            set_iteration_state(self.ledger, it, S.PUSHING, stats=stats, fence=self._fence)
        set_iteration_state(self.ledger, it, S.PUSHED, stats=stats, fence=self._fence)
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
        votes = claim_batch(self.ledger, it, self.platforms, asked, fence=self._fence)
        answers = {pid: answer_of(votes.get(pid, [])) for pid in asked}
        report = close_batch(self.ledger, self.config, it, answers, owner=self.owner)
        self.pending = 0
        log.info("iteration %d labeled: %d answered, AI-error precision %s", it, report.answered,
                 "-" if report.precision is None else f"{report.precision:.3f}")
        self._spend_gauges()

    def _gauge(self, row: dict) -> None:
        self.metrics.set("rlthf_iteration", row["id"])
        for state in (*STATES, S.ASKED):
            current = row["state"] == state or (state == S.SELECTING and row["state"] in SELECTING_STATES)
            self.metrics.set("rlthf_iteration_state", 1.0 if current else 0.0, state=state.value)

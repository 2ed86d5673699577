"""In-process counters and gauges, exposed in the Prometheus text format at /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict

#: name -> (type, help). Only these names can be recorded.
METRICS = {
    "rlthf_webhooks_received_total": ("counter", "Webhook deliveries received, by platform."),
    "rlthf_webhooks_rejected_total": ("counter", "Webhook deliveries rejected (bad secret/signature, replay, bad body)."),
    "rlthf_webhooks_failed_total": ("counter", "Webhook deliveries answered 503 (ledger or platform failed; "
                                              "the sender retries)."),
    "rlthf_labels_stored_total": ("counter", "New human labels stored, by platform and path (webhook, pull)."),
    "rlthf_reconciliations_total": ("counter", "Reconciliation pulls run, by platform and outcome."),
    "rlthf_iterations_started_total": ("counter", "Iterations started by the worker."),
    "rlthf_iteration": ("gauge", "The latest iteration number."),
    "rlthf_iteration_pending_tasks": ("gauge", "Pushed tasks of the latest iteration still waiting for labels."),
    "rlthf_iteration_state": ("gauge", "1 for the state of the latest iteration (selecting, selected, pushing, "
                                       "pushed, labeled), 0 for the others."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Thread-safe counters and gauges keyed by name and label values."""

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple, float]] = defaultdict(dict)
        self._lock = threading.Lock()

    def _key(self, name: str, labels: dict[str, str]) -> tuple:
        if name not in METRICS:
            raise KeyError(f"unknown metric '{name}'; known: {sorted(METRICS)}")
        return tuple(sorted(labels.items()))

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = self._key(name, labels)
        with self._lock:
            self._values[name][key] = self._values[name].get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        key = self._key(name, labels)
        with self._lock:
            self._values[name][key] = float(value)

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(self._key(name, labels), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in METRICS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                series = self._values.get(name) or ({(): 0.0} if kind == "counter" else {})
                for key, value in sorted(series.items()):
                    label = ",".join(f'{k}="{_escape(str(v))}"' for k, v in key)
                    lines.append(f"{name}{{{label}}} {value:g}" if label else f"{name} {value:g}")
        return "\n".join(lines) + "\n"

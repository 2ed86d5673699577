"""The service's counters and gauges (prometheus_client), exposed at /metrics.

Each :class:`Metrics` has its own registry, so two apps in one process (tests, a CLI
that starts a second service) never share counts.
"""

from __future__ import annotations

from typing import Any

from ..errors import require

#: name -> (type, help, label names). Only these names can be recorded.
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "rlthf_webhooks_received_total": ("counter", "Webhook deliveries received, by platform.", ("platform",)),
    "rlthf_webhooks_rejected_total": ("counter", "Webhook deliveries rejected (bad secret/signature, replay, "
                                                 "bad body).", ("platform", "reason")),
    "rlthf_webhooks_failed_total": ("counter", "Webhook deliveries answered 503 (ledger or platform failed; the "
                                               "sender retries), by platform.", ("platform",)),
    "rlthf_labels_stored_total": ("counter", "New human labels stored, by platform and path (webhook, pull).",
                                  ("platform", "path")),
    "rlthf_reconciliations_total": ("counter", "Reconciliation pulls run, by platform and outcome.",
                                    ("platform", "outcome")),
    "rlthf_iterations_started_total": ("counter", "Iterations started by the worker.", ()),
    "rlthf_iteration": ("gauge", "The latest iteration number.", ()),
    "rlthf_iteration_pending_tasks": ("gauge", "Pushed tasks of the latest iteration still waiting for labels.", ()),
    "rlthf_iteration_state": ("gauge", "1 for the state of the latest iteration (selecting, selected, pushing, "
                                       "pushed, labeled), 0 for the others.", ("state",)),
    "rlthf_curated_accuracy": ("gauge", "Estimated curated accuracy (the share of curated labels a human agrees "
                                        "with), its 95% interval: bound=estimate, low, high.", ("bound",)),
    "rlthf_curated_pairs": ("gauge", "Pairs of the curated set by source: human, flipped, trusted_ai, "
                                     "untrusted_ai, asked_open.", ("source",)),
    "rlthf_errors_fixed_per_100_labels": ("gauge", "Expected AI errors the next batch fixes per 100 labels.", ()),
    "rlthf_stop": ("gauge", "1 when the stopping verdict says stop (target reached or nothing to ask).", ()),
    "rlthf_spend": ("gauge", "Spend so far at [cost] prices, by kind (human labels, or judge:NAME for an "
                             "escalation judge's calls).", ("kind",)),
    "rlthf_spend_latest_iteration": ("gauge", "Spend of the latest iteration at [cost] prices (human labels and "
                                              "escalation calls).", ()),
    "rlthf_escalation_calls_total": ("gauge", "Escalation judge calls so far, by judge.", ("judge",)),
    "rlthf_errors_per_cost": ("gauge", "AI-label errors the human labels found per unit of cost, so far.", ()),
}


class Metrics:
    """Thread-safe counters and gauges keyed by name and label values (prometheus_client)."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve")
        self.registry = prom.CollectorRegistry()
        self._metrics: dict[str, Any] = {}
        for name, (kind, help_text, labels) in METRICS.items():
            cls = prom.Counter if kind == "counter" else prom.Gauge
            self._metrics[name] = cls(name, help_text, labelnames=labels, registry=self.registry)

    @staticmethod
    def _check(name: str) -> None:
        if name not in METRICS:
            raise KeyError(f"unknown metric '{name}'; known: {sorted(METRICS)}")

    def _series(self, name: str, labels: dict[str, str]) -> Any:
        self._check(name)
        metric = self._metrics[name]
        return metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._series(name, labels).inc(amount)

    def set(self, name: str, value: float, **labels: str) -> None:
        self._series(name, labels).set(float(value))

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (0 when it was never recorded)."""
        self._check(name)
        got = self.registry.get_sample_value(name, {k: str(v) for k, v in labels.items()})
        return 0.0 if got is None else got

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        prom = require("prometheus_client", "serve")
        return prom.generate_latest(self.registry).decode("utf-8")

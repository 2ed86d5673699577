"""The sections of ``rlthf.toml`` for what runs around the loop: the judge cascade
(``[escalation]``), prices (``[cost]``) and the service (``[serve]``); loaded and
overridden like every section by :mod:`rlthf_plugin.config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .secret import Secret


@dataclass
class EscalationConfig:
    """Trust or Escalate: judges asked before each human batch (``rlthf run / select / serve``)."""

    #: Judges, cheap to strong, comma-separated specs (``openai:``, ``hf:``, ``recorded:``); empty: none.
    judges: str = ""
    #: One judge template per judge, comma-separated (empty entries: ``[judge] template``).
    templates: str = ""
    #: Share of the pool each judge is asked per iteration, one per judge (one value: all).
    budgets: list[float] = field(default_factory=lambda: [0.1])
    #: Pairs first after the tie_inconsistent ones: ``p_wrong``, ``uncertainty``, ``beyond_batch``.
    rule: str = "p_wrong"
    #: Where an escalation judge's winner is the audited label: ``all`` (the strongest wins)
    #: or ``ties`` (only where the primary has none; elsewhere a signal).
    settle: str = "all"


@dataclass
class CostConfig:
    """Prices for the spend that ``status``, the report and ``/metrics`` show."""

    #: Price of one human label (an asked task).
    human_label: float = 0.0
    #: Price of one judge call (one order), one per escalation judge (one value: all).
    judge_call: list[float] = field(default_factory=list)


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    #: Platforms the worker runs the loop on (comma-separated: label-studio, argilla); the
    #: CLI's repeatable ``--backend`` overrides it. Empty: receive webhooks only.
    backends: str = ""
    #: Pull every platform at start and then every this many minutes (0 = only at start),
    #: so labels whose webhooks were lost still arrive.
    reconcile_minutes: float = 5.0
    #: Seconds between the worker's checks of the batch (a webhook wakes it at once).
    poll_seconds: float = 5.0
    #: Time to live of the worker's iteration lease, renewed while it works; a killed
    #: service's lease passes to its successor after at most this long.
    lease_seconds: float = 60.0
    #: The worker starts no iteration numbered this or higher (0 = no limit).
    max_iterations: int = 0
    #: ``target``: push no new batch once the curated accuracy's lower bound reaches
    #: ``selection.target_accuracy`` (said in /health and the log); ``never``: keep going.
    stop_when: str = "never"
    #: Mount Label Studio's ML-backend API under /ml (the CLI's --ml-backend). Off a
    #: loopback host it needs ``ml_basic_auth``.
    ml_backend: bool = False
    #: ``user:password`` Label Studio sends with HTTP Basic auth to /ml (Settings -> Model ->
    #: Connect model); secrets file or ``RLTHF_ML_BASIC_AUTH``.
    ml_basic_auth: Secret | None = None
    #: Bearer token /metrics asks for (secrets file or ``RLTHF_METRICS_TOKEN``); unset: open.
    metrics_token: Secret | None = None
    #: Largest request body (bytes) a webhook may send; larger ones get 413 while streaming.
    max_body_bytes: int = 1 << 20
    #: Largest request body (bytes) under /ml (a /predict of ``ml_max_tasks`` tasks).
    ml_max_body_bytes: int = 8 << 20
    #: Most tasks one /ml/predict may ask for (more: 413).
    ml_max_tasks: int = 100
    #: Connections and requests uvicorn serves at once; more get 503.
    limit_concurrency: int = 64


__all__ = ["CostConfig", "EscalationConfig", "ServeConfig"]

"""The protocol every labeling platform adapter implements, and the data that crosses it.

Adapters translate between these dataclasses and a platform's SDK; they decide nothing.
Which pairs to push comes from the loop (:func:`rlthf_plugin.loop.tasks.asked_tasks`); what
a label means for the ledger is :func:`rlthf_plugin.loop.sync.store_labels`, the one code
path shared by pull and webhooks. An adapter never reads the config files or the ledger
itself: what it keeps in the workspace (a webhook secret it generated) goes through the
:class:`BackendState` it is given.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from ..errors import NotThePlatformError
from ..pairs import PreferencePair

#: Tasks or records sent per bulk call.
MAX_TASKS_PER_BULK = 500


class OnError(str, enum.Enum):
    """What a push does with a task the platform rejects."""

    RAISE = "raise"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class Task:
    """One pair to be labeled by a human, with why and how urgently.

    ``priority`` orders the queue (higher first). ``reason`` says why the pair was chosen
    (region, margin, rank, similarity...). ``ai_label``/``ai_score`` become a prediction
    or suggestion when the platform is told to show them.
    """

    pair: PreferencePair
    priority: float = 0.0
    reason: Mapping[str, Any] = field(default_factory=dict)
    iteration: int | None = None
    ai_label: str | None = None
    ai_score: float | None = None
    margin: float | None = None
    model_version: str = "rlthf"


@dataclass
class PushReport:
    """What a push did. ``mapping`` is pair id -> the platform's task/record id for every
    task of the push, whether created now or found from an earlier (interrupted) push."""

    target: str
    created: int = 0
    existing: int = 0
    predictions: int = 0
    mapping: dict[str, str] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class HumanLabel:
    """One annotator's answer on one pair, as the platform reports it.

    ``label`` is A, B, tie, or skip (skipped / cancelled). ``external_id`` is the
    platform's id of the annotation or response: the key that makes storing idempotent.
    ``deleted`` marks an annotation removed on the platform.
    """

    pair_id: str
    label: str
    annotator: str
    platform: str
    external_id: str
    labeled_at: dt.datetime | None = None
    comment: str | None = None
    deleted: bool = False


@dataclass
class PullResult:
    """Labels read by a pull, and the cursor the next incremental pull starts from.

    ``present``, when the pull listed every label of the target (whatever the cursor), is
    the set of their external ids: a stored label missing from it may have been deleted
    while its deletion event was lost, which the adapter's ``confirm_deleted`` checks.
    """

    labels: list[HumanLabel]
    cursor: Any = None
    present: set[str] | None = None
    #: When set, ``present`` is complete only for these pair ids (an incremental pull that
    #: listed the changed tasks with all their labels); None = for the whole target.
    scope: set[str] | None = None


def identity(response: Any, *, url: str, platform: str, endpoint: str, keys: Sequence[str], option: str) -> dict:
    """The JSON object a platform's "who am I" ``endpoint`` answered with, or
    :class:`~rlthf_plugin.errors.NotThePlatformError` (one line) when the server at ``url``
    answered something else: a web page, another service, a proxy."""
    try:
        me = response.json()
    except ValueError:
        me = None
    if response.status_code != 200 or not isinstance(me, dict) or not all(k in me for k in keys):
        kind = response.headers.get("content-type", "no content type")
        raise NotThePlatformError(f"{url} answers, but not as {platform} does (GET {endpoint} gave HTTP "
                                  f"{response.status_code}, {kind}): check {option}")
    return me


class BackendState(Protocol):
    """What an adapter may keep in the workspace: its secrets."""

    def secret(self, section: str, key: str) -> str | None:
        """The current value of ``[section] key`` (read again: another process may have saved it)."""
        ...

    def save_secret(self, section: str, key: str, value: str) -> None:
        """Keep a secret the adapter generated or received (e.g. a webhook's signing secret)."""
        ...


class MemoryState:
    """A :class:`BackendState` that lives as long as the process (no workspace given)."""

    def __init__(self, secrets: dict[tuple[str, str], str] | None = None):
        self._secrets = dict(secrets or {})

    def secret(self, section: str, key: str) -> str | None:
        return self._secrets.get((section, key))

    def save_secret(self, section: str, key: str, value: str) -> None:
        self._secrets[(section, key)] = str(value)


def by_priority(tasks: Iterable[Task]) -> Iterable[Task]:
    """``tasks`` highest priority first, then by pair id: as given when they say they are
    (``ordered``, a :class:`~rlthf_plugin.loop.tasks.TaskList` read page by page), else
    sorted (a list already in memory)."""
    if getattr(tasks, "ordered", False):
        return tasks
    return sorted(tasks, key=lambda t: (-float(t.priority), t.pair.id))


@runtime_checkable
class LabelingBackend(Protocol):
    """A labeling platform: Label Studio, Argilla, or the local (oracle) backend.

    ``platform`` names it ("label-studio", "argilla", "local"); ``target`` identifies the
    project or dataset on it (used as the key of push records in the ledger).
    """

    platform: str
    target: str

    def health(self) -> bool:
        """True when the platform answers and the credentials work."""
        ...

    def ensure_project(self) -> str:
        """Create the project/dataset from the template, or check an existing one; return its id."""
        ...

    def push(self, tasks: Sequence[Task], *, known: Mapping[str, str]) -> PushReport:
        """Create the tasks that are not on the platform yet; idempotent.

        ``tasks`` is read once, in order, a batch at a time (it may be a TaskList that
        reads its pairs page by page): an adapter holds one batch of texts, not all.

        ``known`` maps pair ids to external ids the ledger has recorded for this target;
        the adapter must still look up tasks by pair id on the platform, so a push that
        crashed after creating tasks but before recording them creates no duplicate.
        """
        ...

    def pull(self, *, cursor: Any = None) -> PullResult:
        """Labels submitted since ``cursor`` (all when None)."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Verify a webhook delivery and translate it; raises WebhookAuthError when forged."""
        ...

    def close(self) -> None:
        ...

def same_url(a: str | None, b: str | None) -> bool:
    """Whether two webhook URLs name the same receiver: scheme and host compared without
    case, a default port, a trailing slash and an empty query ignored."""
    return bool(a) and bool(b) and normalise_url(a) == normalise_url(b)


def normalise_url(url: str) -> str:
    """``url`` in a canonical form (see :func:`same_url`)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/") or "", parts.query, ""))


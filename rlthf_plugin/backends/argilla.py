"""Argilla 2.x adapter: a dataset of pairwise preference records, responses back, signed webhooks.

Translation only (the queue and what a label means are decided elsewhere):

- :meth:`ArgillaBackend.ensure_project` uses the dataset when its settings have what the
  plugin needs (else :class:`IncompatibleProjectError` naming the missing field, question
  or metadata property) or creates it from ``templates/argilla/preference_settings.json``.
- :meth:`~ArgillaBackend.push` logs records in bulks of :data:`MAX_TASKS_PER_BULK` with
  ``id`` = pair id, so a rerun updates and never duplicates; records already on the
  server with the same metadata and suggestion are not sent again.
- :meth:`~ArgillaBackend.pull` reads submitted responses of every annotator; the external
  id of a label is the response id; the cursor is the newest response ``updated_at`` seen.
- :meth:`~ArgillaBackend.parse_webhook` verifies the Standard Webhooks signature and
  timestamp, checks the body's shape (:class:`BadWebhookError` naming what is wrong) and
  maps responses to labels through the same function as pull. Replays are refused by the
  receiver: :meth:`~ArgillaBackend.delivery_id` is remembered in the same ledger
  transaction as the labels, so a delivery whose store failed is stored when retried.

The SDK's records, datasets, settings and webhooks are used as they are; the responses'
ids and timestamps, which the SDK's response model drops, are read through the SDK's own
HTTP client from the records search endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import BackendError, ConfigError
from .argilla_client import PAGE, close_client, http_client, make_client
from .argilla_pull import ResponsePull
from .argilla_push import SUGGESTION_KEYS, RecordPush
from .argilla_records import PLATFORM, TEMPLATE, Answer, check_settings, load_settings, record_metadata, response_labels
from .argilla_setup import DatasetSetup
from .argilla_webhooks import SEEN_PREFIX, WEBHOOK_EVENTS, WEBHOOK_TOLERANCE, WebhookVerifier
from .base import BackendState, MemoryState, OnError
from .mapping import FieldMap, parse_map

if TYPE_CHECKING:
    from ..config import Config


class ArgillaBackend(DatasetSetup, RecordPush, ResponsePull, WebhookVerifier):
    """One dataset on one Argilla server. See the module docstring for what each call does.

    One concern a module: setup (:mod:`.argilla_setup`), push (:mod:`.argilla_push`), pull
    (:mod:`.argilla_pull`), webhooks (:mod:`.argilla_webhooks`); the SDK and its HTTP client
    are :mod:`.argilla_client`, records and responses as data :mod:`.argilla_records`.
    """

    platform = PLATFORM

    def __init__(self, *, url: str, api_key: str, dataset: str, workspace: str = "", show_suggestions: bool = False,
                 min_submitted: int = 1, webhook_url: str = "", webhook_secret: str | None = None,
                 state: BackendState | None = None, on_error: OnError | str = OnError.RAISE,
                 timeout: int = 120, field_map: FieldMap | None = None):
        missing = [option for option, value in (("url", url), ("api_key", api_key), ("dataset", dataset)) if not value]
        if missing:  # every missing setting at once, with where each one goes
            where = {"url": "[argilla] url in rlthf.toml or RLTHF_ARGILLA_URL",
                     "api_key": "the API key once: RLTHF_ARGILLA_API_KEY=KEY for one `rlthf push` (which stores it), "
                                "or `[argilla]` `api_key = \"KEY\"` in the workspace's .rlthf-secrets.toml "
                                "(chmod 600); later commands read it from there",
                     "dataset": "[argilla] dataset in rlthf.toml or RLTHF_ARGILLA_DATASET"}
            raise ConfigError("Argilla is not configured: set " + "; ".join(where[m] for m in missing)
                              + (" (or push once with `rlthf push --backend argilla --url URL --dataset NAME`: the "
                                 "target is remembered)" if set(missing) & {"url", "dataset"} else ""))
        self.url, self.api_key, self.dataset_name, self.workspace = url.rstrip("/"), api_key, dataset, workspace
        self.show_suggestions, self.min_submitted = show_suggestions, min_submitted
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        # Without a workspace, secrets and delivery ids live as long as this object.
        self.state = state if state is not None else MemoryState()
        self.on_error, self.timeout = OnError(on_error), timeout
        self.target = f"{self.url}#{workspace or '-'}/{dataset}"
        self._client = None
        self._dataset = None
        self._users: dict[str, str] = {}
        self._users_asked: set[str] = set()  # ids the users were listed for (see _user_names)
        self.field_map = field_map or FieldMap()
        self._answer: Answer | None = None
        #: The annotation page sorted highest priority first (set by ensure_project).
        self.annotation_url = ""

    # -- connection ---------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.url, self.api_key, self.timeout)
        return self._client

    @property
    def http(self) -> Any:
        """The SDK's authenticated httpx client (for the fields its models drop)."""
        return http_client(self.client)

    def health(self) -> bool:
        try:
            return self.http.get("/api/v1/me").status_code == 200
        except BackendError:
            return False

    def close(self) -> None:
        if self._client is not None:
            close_client(self._client)
            self._client = None

    def _where(self) -> str:
        return f"Argilla dataset '{self.dataset_name}' in workspace '{self.workspace or '(default)'}'"


def from_config(config: Config, *, state: BackendState | None = None, url: str | None = None,
                dataset: str | None = None, argilla_workspace: str | None = None, show_ai: bool | None = None,
                webhook_url: str | None = None, on_error: str = "raise", field_map: str | None = None,
                **ignored: Any) -> ArgillaBackend:
    """The backend of ``config.argilla`` with CLI overrides. ``state`` (the workspace's,
    from :meth:`~rlthf_plugin.workspace.Workspace.backend_state`) is where the webhook secret
    is stored and delivery ids are remembered. ``field_map`` (``--map``, else ``[argilla]
    map``) names the dataset's own fields and question. Label Studio's options (project,
    create_name) are ignored."""
    c = config.argilla
    unknown = set(ignored) - {"project", "create_name"}
    if unknown:
        raise ConfigError(f"unknown Argilla option(s): {sorted(unknown)}")
    return ArgillaBackend(
        url=url or c.url, api_key=str(c.api_key or ""), dataset=dataset or c.dataset,
        workspace=argilla_workspace if argilla_workspace is not None else c.workspace,
        show_suggestions=c.show_suggestions if show_ai is None else show_ai, min_submitted=c.min_submitted,
        webhook_url=webhook_url if webhook_url is not None else c.webhook_url, webhook_secret=c.webhook_secret,
        state=state, on_error=on_error,
        field_map=parse_map(field_map if field_map is not None else c.map,
                            where="--map" if field_map is not None else "[argilla] map"))


#: Also imported from here by callers: the records' names and the webhook constants.
__all__ = ["PAGE", "SEEN_PREFIX", "SUGGESTION_KEYS", "TEMPLATE", "WEBHOOK_EVENTS", "WEBHOOK_TOLERANCE", "Answer",
           "ArgillaBackend", "check_settings", "from_config", "load_settings", "record_metadata", "response_labels"]

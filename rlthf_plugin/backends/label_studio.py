"""Label Studio (1.23, SDK ``label-studio-sdk`` 2.1) behind :class:`LabelingBackend`.

Translation only::

    Task (pair, priority, reason, AI label)  ->  task data {pair_id, prompt, response_a,
                                                  response_b, priority, reason (plain)}
                                                  + meta {rlthf: the machine reason}
                                                  + a prediction (model_version, score)
                                                    when AI labels are shown
    annotation (Choices or Pairwise)         ->  HumanLabel A | B | tie | skip

The project uses ``templates/label_studio/pairwise.xml``, or any config whose names a
:class:`~rlthf_plugin.backends.mapping.FieldMap` (``--map``) gives, including Label
Studio's own ``<Pairwise>`` templates (``selected: left`` is response A); the labeler
sees a plain reason (:mod:`~rlthf_plugin.backends.reasons`) and the machine reason stays
in the task's ``meta``. Tasks are imported highest priority first, the order in which the
labeling page ("Label All Tasks", sequential sampling) serves them; a Data Manager view ordered by ``-tasks:data.priority`` serves the most important
task first; a webhook (ANNOTATION_CREATED / ANNOTATION_UPDATED / ANNOTATIONS_DELETED)
posts to the ``rlthf serve`` receiver with a secret header, since Label Studio signs
nothing. Facts behind these choices: ``SERVERS.md`` in the design notes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..secret import Secret
from .base import BackendState, OnError
from .label_studio_client import check_server, close_client, make_client, sdk_call
from .label_studio_events import PLATFORM, SECRET_HEADER
from .label_studio_pull import CURSOR_OVERLAP, LabelPull
from .label_studio_readback import ReadBack
from .label_studio_push import PAGE_SIZE, TaskPush
from .label_studio_setup import VIEW_ORDERING, VIEW_TITLE, ProjectSetup
from .label_studio_template import TEMPLATE, LabelControl, check_label_config, reason_text, task_payload
from .label_studio_webhooks import WebhookReceiver
from .mapping import FieldMap, parse_map

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


def from_config(config: Config, *, url: str | None = None, project: int | None = None,
                create_name: str | None = None, show_ai: bool | None = None, webhook_url: str | None = None,
                state: BackendState | None = None, on_error: OnError | str = OnError.RAISE,
                field_map: str | None = None, **other: Any) -> "LabelStudioBackend":
    """The adapter for the ``[label_studio]`` section of ``config``, overridden by CLI options.

    ``create_name`` (``--create``) names a project to use or create from the template;
    ``project`` (``--project``) an existing one; ``field_map`` (``--map``, else
    ``[label_studio] map``) its own names. ``state`` is where a generated webhook
    secret is kept (the workspace's secrets file, through
    :meth:`~rlthf_plugin.workspace.Workspace.backend_state`).
    """
    misplaced = sorted(k for k in other if k in ("dataset", "argilla_workspace"))
    if misplaced:
        raise ConfigError(f"--{misplaced[0].replace('_', '-')} is an Argilla option, not a Label Studio one")
    if other:
        raise TypeError(f"unknown Label Studio option(s): {sorted(other)}")
    cfg = config.label_studio
    url = url or cfg.url
    if not url:
        raise ConfigError("no Label Studio URL: set [label_studio] url in rlthf.toml, or push once with "
                          "`rlthf push --backend label-studio --url URL` (the target is remembered)")
    if not cfg.api_key:
        raise ConfigError("no Label Studio API key: store it once: RLTHF_LABEL_STUDIO_API_KEY=KEY for one `rlthf "
                          "push` (which stores it), or `[label_studio]` `api_key = \"KEY\"` in the workspace's "
                          ".rlthf-secrets.toml (chmod 600); later commands read it from there")
    if project is None and create_name is None:
        project = cfg.project
        create_name = cfg.title or None
    elif project is not None:
        create_name = None
    return LabelStudioBackend(
        url, str(cfg.api_key), project=project, title=create_name,
        show_predictions=cfg.show_predictions if show_ai is None else show_ai,
        webhook_url=webhook_url or cfg.webhook_url or None,
        webhook_secret=str(cfg.webhook_secret) if cfg.webhook_secret else None,
        state=state, on_error=OnError(on_error),
        field_map=parse_map(field_map if field_map is not None else cfg.map,
                            where="--map" if field_map is not None else "[label_studio] map"))


class LabelStudioBackend(ProjectSetup, TaskPush, LabelPull, ReadBack, WebhookReceiver):
    """One Label Studio project. ``target`` is the project id (as text) once resolved.

    One concern a module: setup (:mod:`.label_studio_setup`), push (:mod:`.label_studio_push`),
    pull (:mod:`.label_studio_pull`), webhooks (:mod:`.label_studio_webhooks`, read back by
    :mod:`.label_studio_readback`); the SDK
    client is :mod:`.label_studio_client`.
    """

    platform = PLATFORM

    def __init__(self, url: str, api_key: str, *, project: int | None = None, title: str | None = None,
                 show_predictions: bool = False, webhook_url: str | None = None,
                 webhook_secret: str | None = None, state: BackendState | None = None,
                 on_error: OnError = OnError.RAISE, timeout: float = 300.0, field_map: FieldMap | None = None):
        self.url = url.rstrip("/")
        self.field_map = field_map or FieldMap()
        #: The answer's control; read from the project's config by ensure_project.
        self.control: LabelControl | None = None
        self._api_key, self._timeout, self._client = api_key, timeout, None
        self.project_id = project
        self.title = title
        self.show_predictions = show_predictions
        self.webhook_url = webhook_url
        self._webhook_secret = Secret(webhook_secret) if webhook_secret else None
        self.state = state
        self.on_error = on_error
        self.view_id: int | None = None
        self._ensured = False
        self._users: dict[int, str] = {}

    # -- identity -------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The SDK client, made on first use: importing the SDK takes seconds, and a
        webhook delivery (which needs no client) must be answered within Label Studio's
        1 s timeout."""
        if self._client is None:
            self._client = make_client(self.url, self._api_key, self._timeout)
        return self._client

    @property
    def target(self) -> str:
        if self.project_id is None:
            self.ensure_project()
        return str(self.project_id)

    def health(self) -> bool:
        from label_studio_sdk.core.api_error import ApiError
        import httpx

        try:
            self.client.users.whoami()
        except (ApiError, httpx.HTTPError) as e:
            log.warning("Label Studio at %s: %s", self.url, e)
            return False
        return True

    def _call(self, what: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call; an HTTP error becomes a BackendError saying what failed."""
        return sdk_call(self.url, what, fn, *args, **kwargs)

    def _check_server(self) -> None:
        check_server(self.client, self.url)

    def close(self) -> None:
        if self._client is not None:
            close_client(self._client)
            self._client = None


#: Also imported from here by callers: the template's names and the pull's cursor overlap.
__all__ = ["CURSOR_OVERLAP", "LabelStudioBackend", "PAGE_SIZE", "SECRET_HEADER", "TEMPLATE", "VIEW_ORDERING",
           "VIEW_TITLE", "check_label_config", "from_config", "reason_text", "task_payload"]

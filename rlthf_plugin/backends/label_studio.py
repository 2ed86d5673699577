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

import datetime as dt
import hmac
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from tqdm.auto import tqdm

from ..errors import BackendError, ConfigError, NotThePlatformError, WebhookAuthError, require
from ..secret import Secret
from .base import (MAX_TASKS_PER_BULK, BackendState, HumanLabel, OnError, PullResult, PushReport, Task, batched,
                   by_priority, identity, same_url)
from .label_studio_events import (PLATFORM, SECRET_HEADER, WEBHOOK_ACTIONS, annotation_label, changed_query,
                                  event_labels, header_secret, parse_time)
from .label_studio_template import DEFAULT_CONTROL, TEMPLATE, LabelControl, check_label_config, task_payload
from .label_studio_template import reason_text  # noqa: F401 - callers import it from here
from .mapping import FieldMap, parse_map


if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

VIEW_TITLE = "rlthf: highest priority first"
VIEW_ORDERING = ["-tasks:data.priority"]
PAGE_SIZE = 1000
#: An incremental pull lists tasks stamped this long before its cursor again (see ``pull``).
CURSOR_OVERLAP = dt.timedelta(seconds=5)

_HTTP_HINTS = {
    401: "the API key was refused: set [label_studio] api_key in .rlthf-secrets.toml or RLTHF_LABEL_STUDIO_API_KEY",
    403: "the API key may not do this on that project",
    404: "not found on the server (wrong project id or URL?)",
}


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
        raise ConfigError("no Label Studio API key: set [label_studio] api_key in .rlthf-secrets.toml "
                          "or RLTHF_LABEL_STUDIO_API_KEY")
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


class LabelStudioBackend:
    """One Label Studio project. ``target`` is the project id (as text) once resolved."""

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
            sdk = require("label_studio_sdk", "label-studio")
            self._client = sdk.LabelStudio(base_url=self.url, api_key=self._api_key, timeout=self._timeout)
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

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one SDK call; an HTTP error becomes a BackendError saying what failed."""
        from label_studio_sdk.core.api_error import ApiError
        import httpx

        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            hint = _HTTP_HINTS.get(e.status_code or 0, "")
            raise BackendError(f"Label Studio {self.url}: {what} failed with HTTP {e.status_code}: "
                               f"{_short(e.body)}{'; ' + hint if hint else ''}") from e
        except httpx.HTTPError as e:
            raise BackendError(f"Label Studio {self.url}: {what} failed: {e}") from e

    def _check_server(self) -> None:
        """Fail in one line, before anything is written, unless ``url`` is a Label Studio
        that takes the key (a web page or another service answering 200 is named as such)."""
        import httpx

        wrapper = self.client._client_wrapper  # the SDK's own authenticated httpx client
        try:
            r = wrapper.httpx_client.request("api/current-user/whoami", method="GET")
        except httpx.HTTPError as e:
            raise BackendError(f"cannot reach Label Studio at {self.url}: {type(e).__name__}: {e}") from e
        except Exception as e:  # noqa: BLE001 - the SDK's token refresh against a server that is not LS
            raise NotThePlatformError(f"{self.url} answers, but not as Label Studio does ({type(e).__name__}): "
                                      "check [label_studio] url") from e
        if r.status_code in (401, 403):
            raise BackendError(f"Label Studio {self.url}: {_HTTP_HINTS[401]}")
        identity(r, url=self.url, platform="Label Studio", endpoint="/api/current-user/whoami", keys=("id", "email"),
                 option="[label_studio] url")

    # -- project ----------------------------------------------------------------------------
    def ensure_project(self) -> str:
        """Use the configured project (checking its label config) or the one titled
        ``title`` (created from the template when absent); then make sure the priority
        view and, when a webhook URL is set, the webhook exist. Idempotent."""
        if self._ensured:
            return str(self.project_id)
        if self.project_id is None and not self.title:
            raise ConfigError("no Label Studio project: set [label_studio] project (an id) or title in rlthf.toml, "
                              "or push once with `rlthf push --backend label-studio --project ID` or "
                              "`--create NAME` (the target is remembered)")
        self._check_server()
        if self.project_id is None:
            found = [p for p in self._call("listing projects", self.client.projects.list, title=self.title,
                                           page_size=100) if p.title == self.title]
            if found:
                self.project_id = min(p.id for p in found)
            else:
                created = self._call("creating the project", self.client.projects.create,
                                     title=self.title, label_config=TEMPLATE.read_text(encoding="utf-8"),
                                     show_collab_predictions=self.show_predictions,
                                     description="Pairwise preference tasks pushed by rlthf_plugin.")
                self.project_id = int(created.id)
                log.info("created Label Studio project %s '%s'", self.project_id, self.title)
        project = self._call(f"reading project {self.project_id}", self.client.projects.get, self.project_id)
        self.control = check_label_config(project.label_config or "", where=f"Label Studio project {self.project_id}",
                                          field_map=self.field_map)
        if bool(project.show_collab_predictions) != self.show_predictions:
            self._call("updating the project", self.client.projects.update, self.project_id,
                       show_collab_predictions=self.show_predictions)
        self.view_id = self._ensure_view()
        if self.webhook_url:
            self._ensure_webhook()
        self._ensured = True
        return str(self.project_id)

    def _ensure_view(self) -> int:
        for view in self._call("listing views", self.client.views.list, project=self.project_id):
            if (view.data or {}).get("title") == VIEW_TITLE:
                return int(view.id)
        view = self._call("creating the priority view", self.client.views.create, project=self.project_id,
                          data={"title": VIEW_TITLE, "ordering": VIEW_ORDERING, "type": "list", "target": "tasks"})
        return int(view.id)

    @property
    def webhook_secret(self) -> Secret | None:
        return self._webhook_secret

    def _ensure_webhook(self) -> None:
        if not self._webhook_secret:
            if self.state is None:
                raise ConfigError("a webhook needs [label_studio] webhook_secret (in .rlthf-secrets.toml or "
                                  "RLTHF_LABEL_STUDIO_WEBHOOK_SECRET) so the receiver can check deliveries")
            self._webhook_secret = Secret(secrets.token_urlsafe(32))
            self.state.save_secret("label_studio", "webhook_secret", self._webhook_secret)
            log.info("generated a webhook secret into the workspace's secrets")
        spec = {"url": self.webhook_url, "project": self.project_id, "send_payload": True,
                "send_for_all_actions": False, "actions": list(WEBHOOK_ACTIONS),
                "headers": {SECRET_HEADER: str(self._webhook_secret)}, "is_active": True}
        hooks = [h for h in self._call("listing webhooks", self.client.webhooks.list, project=str(self.project_id))
                 if same_url(h.url, self.webhook_url) and h.project == self.project_id]
        if hooks:
            spec.pop("project")  # a webhook cannot move to another project
            self._call("updating the webhook", self.client.webhooks.update, hooks[0].id, **spec)
        else:
            self._call("registering the webhook", self.client.webhooks.create, **spec)

    # -- push -------------------------------------------------------------------------------
    def push(self, tasks: Sequence[Task], *, known: Mapping[str, str]) -> PushReport:
        """Create the tasks whose pair id is not in the project yet, in bulk batches.

        The project is listed first (``known`` is not trusted alone): a push killed after
        the server created a batch but before the ledger recorded it creates no duplicate.
        ``tasks`` is read once, a batch at a time: what is held is the project's ids and
        one batch of texts.
        """
        self.ensure_project()
        report = PushReport(target=self.target)
        remote = self.remote_tasks()
        stale = sum(1 for pid, ext in known.items() if pid in remote and remote[pid] != str(ext))
        if stale:
            log.warning("%d pair(s) recorded with another task id than the server's; using the server's", stale)
        # Imported highest priority first: the labeling page's "Label All Tasks" serves tasks
        # in id order (sequential sampling ignores the view's ordering), so this order is what
        # every annotator sees; the priority view orders the Data Manager and /next?view=.
        progress = tqdm(desc="push label-studio", unit="task", disable=None)
        for batch in batched(self._new_tasks(by_priority(tasks), remote, report), MAX_TASKS_PER_BULK):
            self._import_batch(batch, report)
            progress.update(len(batch))
        progress.close()
        return report

    @staticmethod
    def _new_tasks(tasks: Iterable[Task], remote: Mapping[str, str], report: PushReport) -> Iterator[Task]:
        """The tasks not in the project yet (each pair once); the others are counted as existing."""
        seen: set[str] = set()
        for task in tasks:
            pid = task.pair.id
            if pid in remote:
                report.existing += 1
                report.mapping[pid] = remote[pid]
            elif pid not in seen:
                seen.add(pid)
                yield task

    def _import_batch(self, batch: Sequence[Task], report: PushReport) -> None:
        payload = [self.task_payload(t) for t in batch]
        wanted_predictions = sum(len(p.get("predictions", ())) for p in payload)
        response = self._call(f"importing {len(batch)} task(s)", self.client.projects.import_tasks,
                              self.project_id, request=payload, return_task_ids=True)
        ids = list(_extra(response, "task_ids") or [])
        if response.task_count != len(batch) or len(ids) != len(batch):
            raise BackendError(f"Label Studio project {self.project_id} created {response.task_count} of "
                               f"{len(batch)} task(s) (ids returned: {len(ids)}); rerun the push to fill the gap")
        report.created += len(batch)
        report.mapping.update({t.pair.id: str(i) for t, i in zip(batch, ids)})
        # The server answers "prediction_count"; SDK 2.1.2 models it as "predictions_count".
        got = int(_extra(response, "prediction_count") or response.predictions_count or 0)
        report.predictions += got
        if got != wanted_predictions:
            why = (f"the server created {got} of {wanted_predictions} prediction(s) in a batch of {len(batch)} "
                   "(a prediction that does not match the label config is dropped silently)")
            if self.on_error is OnError.RAISE:
                raise BackendError(f"Label Studio project {self.project_id}: {why}")
            if self.on_error is OnError.WARN:
                log.warning("%s", why)
            report.failed.extend((t.pair.id, why) for t in batch if t.ai_label)

    def task_payload(self, task: Task) -> dict[str, Any]:
        """The task as Label Studio imports it (with its prediction when AI labels are shown)."""
        return task_payload(task, show_predictions=self.show_predictions, field_map=self.field_map,
                            control=self.control or DEFAULT_CONTROL)

    def _task_page(self, page: int, page_size: int) -> dict[str, Any]:
        # The Data Manager list with include=id,data: the SDK's typed pager parses every
        # field of every task and is about 4x slower for the same answer.
        wrapper = self.client._client_wrapper  # the SDK's own authenticated httpx client
        response = self._call("listing tasks", wrapper.httpx_client.request, "api/tasks/", method="GET",
                              params={"project": self.project_id, "page": page, "page_size": page_size,
                                      "fields": "task_only", "include": "id,data"})
        if response.status_code == 404 and page > 1:
            return {"tasks": []}
        if response.status_code >= 400:
            raise BackendError(f"Label Studio {self.url}: listing tasks failed with HTTP "
                               f"{response.status_code}: {_short(response.text)}")
        return response.json()

    def remote_count(self) -> int:
        """How many tasks the project holds."""
        self.ensure_project()
        return int(self._task_page(1, 1).get("total", 0))

    def remote_tasks(self) -> dict[str, str]:
        """pair id -> task id of every task in the project that carries a pair id."""
        out: dict[str, str] = {}
        if self.remote_count() == 0:  # a fresh project: nothing to page through
            return out
        page = 1
        while True:
            rows = self._task_page(page, PAGE_SIZE).get("tasks", [])
            for row in rows:
                pid = (row.get("data") or {}).get("pair_id")
                if pid:
                    out.setdefault(str(pid), str(row["id"]))
            if len(rows) < PAGE_SIZE:
                break
            page += 1
        return out

    # -- pull -------------------------------------------------------------------------------
    def pull(self, *, cursor: Any = None) -> PullResult:
        """Every annotator's label on annotated tasks changed since ``cursor``.

        Without a cursor (the first pull, or a full pass on request) the project's export
        is read and the cursor becomes the latest annotation ``updated_at``. With one, only
        the tasks whose ``updated_at`` is at or after it, less :data:`CURSOR_OVERLAP`, are
        listed, a page at a time (Label Studio stamps a task whenever one of its
        annotations is created, changed or deleted), with all their annotations; the
        cursor becomes the latest task ``updated_at`` seen; ``present`` is complete for the
        listed tasks (``scope``), so a lost deletion is found among them. The cost follows the changes,
        not the size of the project. The full pass keeps the export: listing every annotated
        task a page at a time took about 1.9x as long at 10k labels, same peak RSS
        (docs/benchmarks.md, reconcile). Re-read annotations are absorbed by storing (keyed by
        annotation id); the overlap covers a task stamped just before a listing but
        committed after it.
        """
        self.ensure_project()
        since = parse_time(cursor) if cursor else None
        if since is None:
            return self._pull_export(cursor)
        labels: list[HumanLabel] = []
        present: set[str] = set()
        scope: set[str] = set()
        latest = since
        for task in self._changed_tasks(since - CURSOR_OVERLAP):
            stamp = parse_time(task.get("updated_at"))
            if stamp is not None and stamp > latest:
                latest = stamp
            pair_id = (task.get("data") or {}).get("pair_id")
            if pair_id:
                scope.add(str(pair_id))
                present.update(str(a["id"]) for a in task.get("annotations") or [])
                labels += [self.to_label(str(pair_id), a) for a in task.get("annotations") or []]
        # Changed tasks left with no annotation (the last one deleted, or just pushed): ids
        # and pair ids only, so the ledger can find the deletions among them.
        for task in self._listing(changed_query(since - CURSOR_OVERLAP, None), fields="task_only"):
            pair_id = (task.get("data") or {}).get("pair_id")
            if pair_id:
                scope.add(str(pair_id))
        return PullResult(labels, latest.isoformat(), present=present, scope=scope)

    def _pull_export(self, cursor: Any) -> PullResult:
        labels: list[HumanLabel] = []
        present: set[str] = set()  # every annotation of the project: deletions are what the ledger has beyond it
        latest = None
        for task in self._exported_tasks():
            pair_id = (task.get("data") or {}).get("pair_id")
            if not pair_id:
                continue
            for annotation in task.get("annotations") or []:
                present.add(str(annotation["id"]))
                stamp = parse_time(annotation.get("updated_at") or annotation.get("created_at"))
                if stamp is not None and (latest is None or stamp > latest):
                    latest = stamp
                labels.append(self.to_label(str(pair_id), annotation))
        return PullResult(labels, latest.isoformat() if latest else cursor, present=present)

    def confirm_deleted(self, external_ids: Sequence[str]) -> list[str]:
        """Those of ``external_ids`` (annotation ids) that no longer exist on the server."""
        wrapper = self.client._client_wrapper
        gone = []
        for ext in external_ids:
            r = self._call("reading an annotation", wrapper.httpx_client.request, f"api/annotations/{ext}/",
                           method="GET")
            if r.status_code == 404:
                gone.append(ext)
            elif r.status_code >= 400:
                raise BackendError(f"Label Studio {self.url}: reading annotation {ext} failed with HTTP "
                                   f"{r.status_code}: {_short(r.text)}")
        return gone

    def _exported_tasks(self) -> list[dict[str, Any]]:
        chunks = self._call("exporting annotations", self.client.projects.exports.download_sync,
                            self.project_id, export_type="JSON", download_all_tasks=False)
        return json.loads(b"".join(chunks))

    def _changed_tasks(self, since: dt.datetime) -> Iterator[dict[str, Any]]:
        """Annotated tasks (with their annotations) updated at or after ``since``, paged.

        Two server-side filtered listings, tasks with a submitted annotation and tasks with
        a skipped (cancelled) one, because the Data Manager cannot mix ``and`` and ``or``;
        a task in both is returned once. Tasks without annotations (e.g. just pushed, which
        also stamps ``updated_at``) are listed apart, ids only (``pull``).
        """
        seen: set[int] = set()
        for counter in ("total_annotations", "cancelled_annotations"):
            for task in self._listing(changed_query(since, counter)):
                if task["id"] not in seen:
                    seen.add(task["id"])
                    yield task

    def _listing(self, query: str, *, fields: str = "all") -> Iterator[dict[str, Any]]:
        wrapper = self.client._client_wrapper  # the SDK's authenticated httpx client (see _task_page)
        page = 1
        while True:
            response = self._call("listing changed tasks", wrapper.httpx_client.request, "api/tasks/", method="GET",
                                  params={"project": self.project_id, "page": page, "page_size": PAGE_SIZE,
                                          "fields": fields, "query": query,
                                          **({"include": "id,data"} if fields == "task_only" else {})})
            if response.status_code == 404 and page > 1:
                return
            if response.status_code >= 400:
                raise BackendError(f"Label Studio {self.url}: listing changed tasks failed with HTTP "
                                   f"{response.status_code}: {_short(response.text)}")
            rows = response.json().get("tasks", [])
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            page += 1

    def to_label(self, pair_id: str, annotation: Mapping[str, Any], *, deleted: bool = False) -> HumanLabel:
        """One annotation as a HumanLabel (:func:`.label_studio_events.annotation_label`).

        The answer's control is the project's (or ``label`` in the mapping); a webhook that
        arrives before the config was read accepts any Choices or Pairwise result.
        """
        control = self.control.name if self.control else self.field_map.label or None
        return annotation_label(pair_id, annotation, control=control, user_name=self.user_name, deleted=deleted)

    def user_name(self, user: Any, *, shown: str | None = None) -> str:
        """An annotator's e-mail: from ``shown`` (``created_username``, "first last email,
        id", sent with webhooks) when given, else from the users list (one call, cached)."""
        if isinstance(user, Mapping):
            return str(user.get("email") or user.get("id"))
        if shown and "," in shown:
            words = shown.rsplit(",", 1)[0].split()
            if words and "@" in words[-1]:
                return words[-1]
        if user is None:
            return "unknown"
        uid = int(user)
        if uid not in self._users:
            for u in self._call("listing users", self.client.users.list):
                self._users[int(u.id)] = u.email or str(u.id)
        return self._users.get(uid, str(uid))

    # -- webhooks ---------------------------------------------------------------------------
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Check the secret header, then translate an annotation event into labels
        (:func:`.label_studio_events.event_labels`)."""
        self._check_secret(headers)
        return event_labels(body, self.to_label)

    def _check_secret(self, headers: Mapping[str, str]) -> None:
        got = header_secret(headers)
        for attempt in range(2):
            expected = self._webhook_secret
            if expected and hmac.compare_digest(got.encode(), str(expected).encode()):
                return
            if attempt == 0 and not self._reload_secret():
                break
        raise WebhookAuthError("Label Studio webhook with a wrong secret" if self._webhook_secret
                               else "Label Studio webhook received but no webhook_secret is configured")

    def _reload_secret(self) -> bool:
        """Read the secret again from the state (a push may have generated it since)."""
        if self.state is None:
            return False
        value = self.state.secret("label_studio", "webhook_secret")
        if not value or value == self._webhook_secret:
            return False
        self._webhook_secret = Secret(value)
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client._client_wrapper.httpx_client.httpx_client.close()
            self._client = None


def _extra(model: Any, name: str) -> Any:
    """A response field the SDK's model does not declare (kept by pydantic as extra)."""
    return getattr(model, name, None) or (getattr(model, "model_extra", None) or {}).get(name)


def _short(body: Any, limit: int = 300) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


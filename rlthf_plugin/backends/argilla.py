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

import datetime as dt
import json
import logging
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from ..errors import BackendError, BadWebhookError, ConfigError, WebhookAuthError, require
from ..secret import Secret
from .argilla_records import (DEFAULT_ANSWER, LABEL_VALUES, METADATA_TYPES, PLATFORM, PRIORITY_SORT, TEMPLATE, WHY_FIELD,
                              Answer, check_settings, load_settings, record_metadata, response_labels)
from .base import (MAX_TASKS_PER_BULK, BackendState, HumanLabel, MemoryState, OnError, PullResult, PushReport, Task,
                   batched, identity, same_url)
from .mapping import FieldMap, parse_map
from .reasons import plain_reason

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

WEBHOOK_EVENTS = ("response.created", "response.updated", "response.deleted", "record.completed")
#: Records per page when reading from the server.
PAGE = 500
#: What a suggestion carries that a push compares with the wanted one.
SUGGESTION_KEYS = ("value", "score", "agent")
#: Prefix of this platform's webhook delivery ids in the ledger's replay memory.
SEEN_PREFIX = "argilla:"
#: Standard Webhooks' timestamp tolerance (the ``standardwebhooks`` package checks it).
WEBHOOK_TOLERANCE = dt.timedelta(minutes=5)


class ArgillaBackend:
    """One dataset on one Argilla server. See the module docstring for what each call does."""

    platform = PLATFORM

    def __init__(self, *, url: str, api_key: str, dataset: str, workspace: str = "", show_suggestions: bool = False,
                 min_submitted: int = 1, webhook_url: str = "", webhook_secret: str | None = None,
                 state: BackendState | None = None, on_error: OnError | str = OnError.RAISE,
                 timeout: int = 120, field_map: FieldMap | None = None):
        missing = [option for option, value in (("url", url), ("api_key", api_key), ("dataset", dataset)) if not value]
        if missing:  # every missing setting at once, with where each one goes
            where = {"url": "[argilla] url in rlthf.toml or RLTHF_ARGILLA_URL",
                     "api_key": "[argilla] api_key in .rlthf-secrets.toml or RLTHF_ARGILLA_API_KEY",
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
    def client(self):
        if self._client is None:
            rg = require("argilla", "argilla")
            self._check_server()
            try:
                self._client = rg.Argilla(api_url=self.url, api_key=self.api_key, timeout=self.timeout)
            except Exception as e:  # the SDK raises httpx and its own errors; both mean "cannot use the server"
                raise BackendError(f"cannot reach Argilla at {self.url}: {e}") from e
        return self._client

    def _check_server(self) -> None:
        """Fail in one line, before anything is written, unless ``url`` is an Argilla server
        that takes the key as an owner's or admin's (an annotator cannot list records)."""
        import httpx

        try:
            r = httpx.get(f"{self.url}/api/v1/me", headers={"X-Argilla-Api-Key": self.api_key}, timeout=30)
        except httpx.HTTPError as e:
            raise BackendError(f"cannot reach Argilla at {self.url}: {type(e).__name__}: {e}") from e
        if r.status_code == 401:
            raise BackendError(f"Argilla at {self.url} refused the API key ([argilla] api_key in .rlthf-secrets.toml "
                               "or RLTHF_ARGILLA_API_KEY)")
        me = identity(r, url=self.url, platform="Argilla", endpoint="/api/v1/me", keys=("role", "username"),
                      option="[argilla] url")
        if me["role"] not in ("owner", "admin"):
            raise BackendError(f"the Argilla API key belongs to {me['role']} '{me['username']}': rlthf needs an "
                               "owner's or admin's key (annotators cannot create datasets or list records)")

    def _check_workspace(self) -> None:
        if not self.workspace:
            return
        r = self.http.get("/api/v1/me/workspaces")
        _raise_for(r, "listing workspaces")
        names = sorted(w["name"] for w in r.json().get("items", []))
        if self.workspace not in names:
            raise BackendError(f"Argilla workspace '{self.workspace}' does not exist on {self.url} (workspaces this "
                               f"key sees: {', '.join(names) or 'none'}); create it or fix --argilla-workspace")

    @property
    def http(self):
        """The SDK's authenticated httpx client (for the fields its models drop)."""
        return self.client.api.http_client

    def health(self) -> bool:
        try:
            return self.http.get("/api/v1/me").status_code == 200
        except BackendError:
            return False

    def close(self) -> None:
        if self._client is not None:
            self._client.api.http_client.close()
            self._client = None

    # -- dataset ------------------------------------------------------------------------
    def _where(self) -> str:
        return f"Argilla dataset '{self.dataset_name}' in workspace '{self.workspace or '(default)'}'"

    def dataset(self):
        if self._dataset is None:
            self._check_workspace()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK warns when a dataset does not exist
                self._dataset = self.client.datasets(self.dataset_name, workspace=self.workspace or None)
            if self._dataset is None:
                raise BackendError(f"{self._where()} does not exist: run 'rlthf push' to create it")
        return self._dataset

    def ensure_project(self) -> str:
        rg = require("argilla", "argilla")
        self._check_workspace()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = self.client.datasets(self.dataset_name, workspace=self.workspace or None)
        if found is not None:
            self._answer, missing = check_settings(found.settings, where=self._where(), field_map=self.field_map)
            if missing:
                self._add_metadata(found, missing)
            wanted, actual = self.min_submitted, found.settings.distribution.min_submitted
            if wanted != actual:
                log.warning("%s asks for %d submission(s) per record, the config says %d; the dataset's "
                            "setting stays", self._where(), actual, wanted)
            self._dataset = found
        else:
            ds = rg.Dataset(name=self.dataset_name, workspace=self.workspace or None,
                            settings=load_settings(min_submitted=self.min_submitted), client=self.client)
            self._dataset = ds.create()
            self._answer = DEFAULT_ANSWER
        self._link_priority_order()
        if self.webhook_url:
            self.ensure_webhook()
        return str(self._dataset.id)

    @property
    def answer(self) -> Answer:
        """The question holding the answer (read from the dataset's settings once)."""
        if self._answer is None:
            self._answer, _ = check_settings(self.dataset().settings, where=self._where(), field_map=self.field_map)
        return self._answer

    def _add_metadata(self, dataset, names: Sequence[str]) -> None:
        """Add the template's metadata properties ``names`` to an existing dataset (the
        server allows it on a dataset with records; annotators see only ``priority``)."""
        template = {m["name"]: m for m in json.loads(TEMPLATE.read_text(encoding="utf-8"))["metadata"]}
        for name in names:
            spec = template[name]
            r = self.http.post(f"/api/v1/datasets/{dataset.id}/metadata-properties",
                               json={"name": name, "title": spec["title"], "settings": {"type": METADATA_TYPES[name]},
                                     "visible_for_annotators": spec["visible_for_annotators"]})
            _raise_for(r, f"adding the metadata property '{name}' to {self._where()}")
        log.info("added metadata %s to %s", ", ".join(names), self._where())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._dataset = self.client.datasets(self.dataset_name, workspace=self.workspace or None)

    def _link_priority_order(self) -> None:
        """Put the link that opens the records highest priority first into the guidelines.

        Argilla 2.8 has no default sort and no distribution order: without a sort each
        annotator sees a per-user shuffle, and Sort -> Priority starts ascending. The
        link sorts descending; ``rlthf push`` prints it too.
        """
        ds = self._dataset
        self.annotation_url = f"{self.url}/dataset/{ds.id}/annotation-mode?{PRIORITY_SORT}"
        r = self.http.get(f"/api/v1/datasets/{ds.id}")
        _raise_for(r, f"reading {self._where()}")
        guidelines = r.json().get("guidelines") or ""
        if self.annotation_url in guidelines:
            return
        line = (f"**Start here:** [the records, highest priority first]({self.annotation_url}) "
                "(sorted by priority, descending).")
        r = self.http.patch(f"/api/v1/datasets/{ds.id}", json={"guidelines": f"{line}\n\n{guidelines}".strip()})
        _raise_for(r, f"updating the guidelines of {self._where()}")

    def ensure_webhook(self) -> str:
        """Register (or reuse) the webhook to ``webhook_url``; store its secret; return its id."""
        rg = require("argilla", "argilla")
        hooks = [w for w in self.client.webhooks if same_url(w.url, self.webhook_url)]
        if hooks:
            hook = hooks[0]
            if not set(WEBHOOK_EVENTS) <= set(hook.events) or not hook.enabled:
                hook.events = sorted(set(hook.events) | set(WEBHOOK_EVENTS))
                hook.enabled = True
                hook.update()
        else:
            hook = rg.Webhook(url=self.webhook_url, events=list(WEBHOOK_EVENTS),
                              description="rlthf_plugin: human labels back to the ledger", _client=self.client).create()
        self.webhook_secret = Secret(hook.secret)
        self.state.save_secret("argilla", "webhook_secret", hook.secret)
        return str(hook.id)

    # -- push ---------------------------------------------------------------------------
    def remote_records(self) -> Iterator[dict]:
        """Every record of the dataset as the server lists it (with suggestions), page by page."""
        ds_id = self.dataset().id
        offset = 0
        while True:
            r = self.http.get(f"/api/v1/datasets/{ds_id}/records",
                              params={"offset": offset, "limit": PAGE, "include": ["suggestions"]})
            _raise_for(r, f"listing records of {self._where()}")
            items = r.json()["items"]
            yield from items
            if len(items) < PAGE:
                return
            offset += len(items)

    def _suggestion(self, task: Task) -> dict | None:
        if not self.show_suggestions or task.ai_label not in LABEL_VALUES:
            return None
        value = self.answer.value(task.ai_label)
        if value is None:
            return None
        score = task.ai_score if task.ai_score is not None and 0.0 <= task.ai_score <= 1.0 else None
        if self.answer.kind == "ranking":  # one score per ranked option
            score = [score, score] if score is not None else None
        return {"value": value, "score": score, "agent": task.model_version}

    def _record(self, task: Task):
        rg = require("argilla", "argilla")
        p, fm, ds = task.pair, self.field_map, self.dataset()
        suggestion = self._suggestion(task)
        fields = {fm.prompt: p.prompt, fm.response_a: p.response_a, fm.response_b: p.response_b}
        if WHY_FIELD in {f.name for f in ds.settings.fields} and WHY_FIELD not in fields:
            fields[WHY_FIELD] = plain_reason(task.reason)
        record = rg.Record(
            id=p.id, fields=fields, metadata=record_metadata(task),
            suggestions=[rg.Suggestion(self.answer.name, **suggestion)] if suggestion else [])
        record.dataset = self.dataset()  # resolves the suggestion's question id
        return record.api_model()

    def _remote_index(self, question_id: str) -> dict[str, tuple[str, str, str | None]]:
        """external id -> (record id, its metadata, its suggestion for the answer) of every
        record, the last two as short JSON texts: the listing is read page by page and
        reduced to what a push may change, never held whole (fields carry the texts)."""
        index = {}
        for r in self.remote_records():
            if r.get("external_id"):
                have = [x for x in r.get("suggestions") or [] if str(x.get("question_id")) == question_id]
                index[r["external_id"]] = (str(r["id"]), _canonical(r.get("metadata") or {}),
                                           _canonical([have[0].get(k) for k in SUGGESTION_KEYS]) if have else None)
        return index

    def _unchanged(self, task: Task, have: tuple[str, str, str | None]) -> bool:
        _, metadata, suggestion = have
        if metadata != _canonical(record_metadata(task)):
            return False
        wanted = self._suggestion(task)
        return wanted is None or suggestion == _canonical([wanted[k] for k in SUGGESTION_KEYS])

    def push(self, tasks: Sequence[Task], *, known: Mapping[str, str]) -> PushReport:
        """Create or update records (``id`` = pair id). ``known`` is not trusted: the
        server's listing says what exists, so an interrupted push leaves no gap or duplicate.
        ``tasks`` is read once, a batch at a time: what is held is a short entry per record
        of the dataset and one batch of texts."""
        ds = self.dataset()
        report = PushReport(target=self.target)
        question_id = str(ds.settings.questions[self.answer.name].id)
        remote = self._remote_index(question_id)
        for batch in batched(self._changed_tasks(tasks, remote, report), MAX_TASKS_PER_BULK):
            for model in self._upsert(batch, report):
                if model.external_id not in report.mapping:
                    report.created += 1
                report.mapping[model.external_id] = str(model.id)
        return report

    def _changed_tasks(self, tasks: Iterable[Task], remote: Mapping[str, tuple[str, str, str | None]],
                       report: PushReport) -> Iterator[Task]:
        """The tasks whose record is missing or differs; existing ones and suggestions are counted."""
        for task in tasks:
            if self._suggestion(task) is not None:
                report.predictions += 1
            have = remote.get(task.pair.id)
            if have is not None:
                report.existing += 1
                report.mapping[task.pair.id] = have[0]
                if self._unchanged(task, have):
                    continue
            yield task

    def _upsert(self, batch: Sequence[Task], report: PushReport) -> list:
        ds_id = self.dataset().id
        try:
            models, _ = self.client.api.records.bulk_upsert(ds_id, [self._record(t) for t in batch])
            return models
        except Exception as e:  # the SDK's ArgillaAPIError family and httpx errors
            if self.on_error is OnError.RAISE or len(batch) == 1:
                if self.on_error is OnError.RAISE:
                    raise BackendError(f"{self._where()} refused {len(batch)} record(s): {e}") from e
                report.failed.append((batch[0].pair.id, str(e)))
                if self.on_error is OnError.WARN:
                    log.warning("record %s refused: %s", batch[0].pair.id, e)
                return []
        # One bad record fails its whole bulk: send one by one to find it.
        return [m for t in batch for m in self._upsert([t], report)]

    # -- pull ---------------------------------------------------------------------------
    def _user_names(self, ids: set[str]) -> dict[str, str]:
        """user id -> user name; the users are listed again only for an id not asked about
        before (a pull asks once per record: one listing, not one per record)."""
        if not ids <= self._users.keys() | self._users_asked:
            self._users_asked |= ids
            r = self.http.get("/api/v1/users")
            if r.status_code == 200:
                self._users.update({str(u["id"]): u["username"] for u in r.json()["items"]})
        return self._users

    def records_with_responses(self) -> Iterator[dict]:
        """Records having a response (any status), with their responses, via the search endpoint."""
        ds_id = self.dataset().id
        body = {"query": {}, "filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                                  "values": ["submitted", "discarded", "draft"]}]}}
        offset = 0
        while True:
            r = self.http.post(f"/api/v1/datasets/{ds_id}/records/search", json=body,
                               params={"offset": offset, "limit": PAGE, "include": ["responses"]})
            _raise_for(r, f"searching records of {self._where()}")
            items = r.json()["items"]
            yield from (item["record"] for item in items)
            if len(items) < PAGE:
                return
            offset += len(items)

    def pull(self, *, cursor: Any = None) -> PullResult:
        """Labels of responses updated since ``cursor`` (all without one), read a page of
        records at a time: the labels are kept, the records (with their texts) are not."""
        since = (cursor or {}).get("since") if isinstance(cursor, dict) else None
        labels: list[HumanLabel] = []
        newest = since
        for rec in self.records_with_responses():
            responses = rec.get("responses") or []
            users = self._user_names({str(r["user_id"]) for r in responses})
            labels += response_labels(rec, responses, users, since=since, answer=self.answer)
            newest = max([newest or "", *(str(r["updated_at"]) for r in responses)]) or None
        return PullResult(labels=labels, cursor={"since": newest} if newest else cursor)

    # -- webhooks -----------------------------------------------------------------------
    def _current_secret(self) -> str | None:
        secret = self.state.secret("argilla", "webhook_secret")  # may have been stored since we started
        if secret:
            return str(secret)
        return str(self.webhook_secret) if self.webhook_secret else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> dict:
        """The delivery's JSON payload when its signature, timestamp and id are valid."""
        standardwebhooks = require("standardwebhooks", "argilla")
        secret = self._current_secret()
        if not secret:
            raise WebhookAuthError("no Argilla webhook secret is configured ([argilla] webhook_secret)")
        headers = {k.lower(): v for k, v in headers.items()}
        if not all(headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
            raise WebhookAuthError("unsigned delivery (webhook-id, webhook-timestamp, webhook-signature)")
        try:
            payload = standardwebhooks.Webhook(secret).verify(body, headers)
        except standardwebhooks.WebhookVerificationError as e:
            raise WebhookAuthError(f"invalid signature or timestamp: {e}") from e
        except (ValueError, UnicodeDecodeError) as e:  # signed, but not JSON
            raise BadWebhookError(f"Argilla webhook: the body is not JSON ({type(e).__name__})") from e
        if not isinstance(payload, dict):
            raise BadWebhookError(f"Argilla webhook: the body is {type(payload).__name__}, not a JSON object")
        return payload

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The delivery's id for replay protection (remembered with its labels)."""
        value = next((v for k, v in headers.items() if k.lower() == "webhook-id"), None)
        return SEEN_PREFIX + value if value else None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[HumanLabel]:
        """Verify a delivery and translate it; :class:`BadWebhookError` when its body is not
        the event's shape (the receiver answers 400 so Argilla does not retry it)."""
        payload = self.verify(headers, body)
        event, data = payload.get("type"), payload.get("data")
        if event not in WEBHOOK_EVENTS:
            return []
        data = _field(data, "data", dict)
        if event == "record.completed":
            if _dataset_id(data, "data") != str(self.dataset().id):
                return []  # webhooks are server-wide: another dataset's record
            return self._completed(_field(data.get("id"), "data.id", str))
        record = _field(data.get("record"), "data.record", dict)
        if _dataset_id(record, "data.record") != str(self.dataset().id):
            return []
        user = _field(data.get("user"), "data.user", dict)
        for key, kind in (("id", str), ("status", str), ("updated_at", str)):
            _field(data.get(key), f"data.{key}", kind)
        _field(record.get("external_id"), "data.record.external_id", str)
        response = {**data, "user_id": user.get("id")}
        users = {str(response["user_id"]): str(user.get("username") or user.get("id") or "")}
        try:
            labels = response_labels(record, [response], users, answer=self.answer)
        except (TypeError, ValueError, AttributeError) as e:
            raise BadWebhookError(f"Argilla webhook: {event}: {e}") from e
        if event == "response.deleted":  # gone as of now, whatever it said before
            now = dt.datetime.now(dt.timezone.utc)
            labels = [HumanLabel(**{**lab.__dict__, "deleted": True, "labeled_at": now}) for lab in labels]
        return labels

    def _completed(self, record_id: str) -> list[HumanLabel]:
        try:
            uuid.UUID(record_id)
        except ValueError as e:
            raise BadWebhookError(f"Argilla webhook: data.id is not a record id: {record_id[:60]!r}") from e
        r = self.http.get(f"/api/v1/records/{record_id}", params={"include": ["responses"]})
        if r.status_code == 404:
            raise BadWebhookError(f"Argilla webhook: record {record_id} does not exist")
        _raise_for(r, f"reading record {record_id}")
        record = r.json()
        responses = record.get("responses") or []
        return response_labels(record, responses, self._user_names({str(x["user_id"]) for x in responses}),
                               answer=self.answer)


def _field(value: Any, name: str, kind: type) -> Any:
    """``value`` when it is a ``kind``, else a one-line :class:`BadWebhookError` naming the field."""
    if not isinstance(value, kind) or (kind is str and not value):
        shown = "missing" if value is None else f"a {type(value).__name__}"
        raise BadWebhookError(f"Argilla webhook: {name} must be a {'JSON object' if kind is dict else kind.__name__}, "
                              f"got {shown}")
    return value


def _dataset_id(item: Mapping[str, Any], where: str) -> str:
    return str(_field(_field(item.get("dataset"), f"{where}.dataset", dict).get("id"), f"{where}.dataset.id", str))


def _canonical(value: Any) -> str:
    """``value`` as JSON with sorted keys: equal values, equal texts."""
    return json.dumps(value, sort_keys=True, default=str)


def _raise_for(response, what: str) -> None:
    if response.status_code >= 400:
        raise BackendError(f"Argilla: {what}: HTTP {response.status_code}: {response.text[:300]}")


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


__all__ = ["ArgillaBackend", "SEEN_PREFIX", "TEMPLATE", "check_settings", "from_config", "load_settings", "record_metadata",
           "response_labels"]

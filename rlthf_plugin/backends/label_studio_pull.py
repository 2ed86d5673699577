"""Label Studio pull: the project's labels, in full (the export) or changed since a cursor
(the check that an annotation missing from a pull is really gone is
:meth:`.label_studio_readback.ReadBack.confirm_deleted`).

A mixin of :class:`~rlthf_plugin.backends.label_studio.LabelStudioBackend` (it uses the
backend's client, ``_call`` and ``ensure_project``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator, Mapping

from ..errors import BackendError
from .base import HumanLabel, PullResult
from .label_studio_client import http_request, short
from .label_studio_events import annotation_label, changed_query, parse_time
from .label_studio_push import PAGE_SIZE

#: An incremental pull lists tasks stamped this long before its cursor again (see ``pull``).
CURSOR_OVERLAP = dt.timedelta(seconds=5)


class LabelPull:
    """``pull`` and the translation of one annotation (``to_label``)."""

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
        page = 1
        while True:
            response = self._call("listing changed tasks", http_request, self.client, "api/tasks/", method="GET",
                                  params={"project": self.project_id, "page": page, "page_size": PAGE_SIZE,
                                          "fields": fields, "query": query,
                                          **({"include": "id,data"} if fields == "task_only" else {})})
            if response.status_code == 404 and page > 1:
                return
            if response.status_code >= 400:
                raise BackendError(f"Label Studio {self.url}: listing changed tasks failed with HTTP "
                                   f"{response.status_code}: {short(response.text)}")
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


__all__ = ["CURSOR_OVERLAP", "LabelPull"]

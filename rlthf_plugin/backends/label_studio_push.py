"""Label Studio push: tasks in bulk, highest priority first, none twice.

A mixin of :class:`~rlthf_plugin.backends.label_studio.LabelStudioBackend` (it uses the
backend's client, ``_call`` and ``ensure_project``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator, Mapping, Sequence

from tqdm.auto import tqdm

from ..batching import batched
from ..errors import BackendError
from .base import MAX_TASKS_PER_BULK, OnError, PushReport, Task, by_priority
from .label_studio_client import extra, http_request, short
from .label_studio_template import DEFAULT_CONTROL, task_payload

log = logging.getLogger(__name__)

PAGE_SIZE = 1000


class TaskPush:
    """``push`` and the listing of the project's tasks."""

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
        ids = list(extra(response, "task_ids") or [])
        if response.task_count != len(batch) or len(ids) != len(batch):
            raise BackendError(f"Label Studio project {self.project_id} created {response.task_count} of "
                               f"{len(batch)} task(s) (ids returned: {len(ids)}); rerun the push to fill the gap")
        report.created += len(batch)
        report.mapping.update({t.pair.id: str(i) for t, i in zip(batch, ids)})
        # The server answers "prediction_count"; SDK 2.1.2 models it as "predictions_count".
        got = int(extra(response, "prediction_count") or response.predictions_count or 0)
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
        response = self._call("listing tasks", http_request, self.client, "api/tasks/", method="GET",
                              params={"project": self.project_id, "page": page, "page_size": page_size,
                                      "fields": "task_only", "include": "id,data"})
        if response.status_code == 404 and page > 1:
            return {"tasks": []}
        if response.status_code >= 400:
            raise BackendError(f"Label Studio {self.url}: listing tasks failed with HTTP "
                               f"{response.status_code}: {short(response.text)}")
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


__all__ = ["PAGE_SIZE", "TaskPush"]

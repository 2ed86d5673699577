"""Argilla push: records (``id`` = pair id) in bulks, only those missing or changed.

A mixin of :class:`~rlthf_plugin.backends.argilla.ArgillaBackend` (it uses the backend's
client, ``http``, ``dataset`` and ``answer``).
"""

from __future__ import annotations

import logging
from typing import Iterable, Iterator, Mapping, Sequence

from ..batching import batched
from ..errors import BackendError, require
from .argilla_client import PAGE, canonical, raise_for
from .argilla_records import LABEL_VALUES, WHY_FIELD, record_metadata
from .base import MAX_TASKS_PER_BULK, OnError, PushReport, Task
from .reasons import plain_reason

log = logging.getLogger(__name__)

#: What a suggestion carries that a push compares with the wanted one.
SUGGESTION_KEYS = ("value", "score", "agent")


class RecordPush:
    """``push`` and the listing of the dataset's records."""

    def remote_records(self) -> Iterator[dict]:
        """Every record of the dataset as the server lists it (with suggestions), page by page."""
        ds_id = self.dataset().id
        offset = 0
        while True:
            r = self.http.get(f"/api/v1/datasets/{ds_id}/records",
                              params={"offset": offset, "limit": PAGE, "include": ["suggestions"]})
            raise_for(r, f"listing records of {self._where()}")
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
                index[r["external_id"]] = (str(r["id"]), canonical(r.get("metadata") or {}),
                                           canonical([have[0].get(k) for k in SUGGESTION_KEYS]) if have else None)
        return index

    def _unchanged(self, task: Task, have: tuple[str, str, str | None]) -> bool:
        _, metadata, suggestion = have
        if metadata != canonical(record_metadata(task)):
            return False
        wanted = self._suggestion(task)
        return wanted is None or suggestion == canonical([wanted[k] for k in SUGGESTION_KEYS])

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


__all__ = ["RecordPush", "SUGGESTION_KEYS"]

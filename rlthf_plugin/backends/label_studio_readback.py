"""A Label Studio webhook is a notification, not the truth: before a delivery's labels are
stored, each annotation is read back from Label Studio with the plugin's own token.

Label Studio shows a webhook's headers, the secret header included, to every member of
the project (``GET /api/webhooks/?project=ID`` with an annotator's token), so the secret
only tells that a delivery came through someone who can see the project. The label
stored is what Label Studio itself answers for the annotation id: a body made up for an
annotation that does not exist stores nothing, one that names another project's task or
changes the answer stores Label Studio's version, and a deletion is stored only when
Label Studio no longer has the annotation. A mixin of
:class:`~rlthf_plugin.backends.label_studio.LabelStudioBackend`.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from ..errors import BackendError
from .base import HumanLabel
from .label_studio_client import http_request, short

log = logging.getLogger(__name__)


class ReadBack:
    """``read_back``: the labels of a delivery as Label Studio has them."""

    def read_back(self, labels: Sequence[HumanLabel]) -> list[HumanLabel]:
        """``labels`` (from a webhook body) replaced by Label Studio's own annotations;
        those it does not have (or not in this project) are dropped, with a warning."""
        out: list[HumanLabel] = []
        deletions = [lab for lab in labels if lab.deleted and lab.external_id.isdigit()]
        if deletions:
            gone = set(self.confirm_deleted([lab.external_id for lab in deletions]))
            for lab in deletions:
                if lab.external_id in gone:
                    out.append(lab)
                else:
                    log.warning("Label Studio webhook: annotation %s is reported deleted but Label Studio still "
                                "has it; not marked deleted", lab.external_id)
        for lab in labels:
            if lab.deleted:
                continue
            annotation = self._annotation(lab.external_id) if lab.external_id.isdigit() else None
            pair_id = self._pair_of(annotation) if annotation is not None else None
            if pair_id is None:
                log.warning("Label Studio webhook: annotation %r is not on project %s of %s; nothing stored",
                            lab.external_id[:40], self.project_id, self.url)
                continue
            out.append(self.to_label(pair_id, annotation))
        return out

    def confirm_deleted(self, external_ids: Sequence[str]) -> list[str]:
        """Those of ``external_ids`` (annotation ids) that Label Studio does not have on this
        project: deleted, never there (a forged delivery stored by an older version), or on
        another project's task. ``rlthf pull --full`` marks them deleted."""
        gone = []
        for ext in external_ids:
            annotation = self._annotation(ext) if str(ext).isdigit() else None
            if annotation is None or self._pair_of(annotation) is None:
                gone.append(ext)
        return gone

    def _get(self, what: str, path: str) -> dict[str, Any] | None:
        r = self._call(what, http_request, self.client, path, method="GET")
        if r.status_code == 404:
            return None
        if r.status_code >= 400:
            raise BackendError(f"Label Studio {self.url}: {what} failed with HTTP {r.status_code}: {short(r.text)}")
        body = r.json()
        return body if isinstance(body, dict) else None

    def _annotation(self, annotation_id: str) -> dict[str, Any] | None:
        return self._get(f"reading annotation {annotation_id}", f"api/annotations/{annotation_id}/")

    def _pair_of(self, annotation: dict[str, Any]) -> str | None:
        """The pair id of the annotation's task when that task is on this project, else None."""
        task_id = annotation.get("task")
        if not isinstance(task_id, int):
            return None
        task = self._get(f"reading task {task_id}", f"api/tasks/{task_id}/")
        if task is None or str(task.get("project")) != self.target:
            return None
        data = task.get("data")
        pair_id = data.get("pair_id") if isinstance(data, dict) else None
        return str(pair_id) if pair_id else None


__all__ = ["ReadBack"]

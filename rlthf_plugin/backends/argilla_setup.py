"""Argilla setup: the dataset (checked against what the plugin needs, or created from the
template, metadata properties added), the guidelines' link to the records highest priority
first, and the webhook registration.

A mixin of :class:`~rlthf_plugin.backends.argilla.ArgillaBackend` (it uses the backend's
client, ``http`` and ``_where``).
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any, Sequence

from ..errors import BackendError, require
from ..secret import Secret
from .argilla_client import raise_for
from .argilla_records import DEFAULT_ANSWER, METADATA_TYPES, WHY_FIELD, PRIORITY_SORT, TEMPLATE, Answer, check_settings, load_settings
from .argilla_webhooks import WEBHOOK_EVENTS
from .base import same_url

log = logging.getLogger(__name__)


class DatasetSetup:
    """``ensure_project``, ``dataset``, ``answer`` and ``ensure_webhook``."""

    def _check_workspace(self) -> None:
        if not self.workspace:
            return
        r = self.http.get("/api/v1/me/workspaces")
        raise_for(r, "listing workspaces")
        names = sorted(w["name"] for w in r.json().get("items", []))
        if self.workspace not in names:
            raise BackendError(f"Argilla workspace '{self.workspace}' does not exist on {self.url} (workspaces this "
                               f"key sees: {', '.join(names) or 'none'}); create it or fix --argilla-workspace")

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
            why = self.field_map.reason or WHY_FIELD
            if why not in {f.name for f in found.settings.fields}:  # said once per push
                self.setup_notes = [
                    f"{self._where()} has no text field '{why}', so annotators see why a pair was asked only in "
                    "the record's metadata 'Why asked' (why_asked). Argilla cannot add a field to a published dataset: to show "
                    f"it as a field, create the dataset with a TextField '{why}' (or name one with --map "
                    "reason=NAME)"]
                log.info("%s", self.setup_notes[0])
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

    def _add_metadata(self, dataset: Any, names: Sequence[str]) -> None:
        """Add the template's metadata properties ``names`` to an existing dataset (the
        server allows it on a dataset with records; annotators see only ``priority``)."""
        template = {m["name"]: m for m in json.loads(TEMPLATE.read_text(encoding="utf-8"))["metadata"]}
        for name in names:
            spec = template[name]
            r = self.http.post(f"/api/v1/datasets/{dataset.id}/metadata-properties",
                               json={"name": name, "title": spec["title"], "settings": {"type": METADATA_TYPES[name]},
                                     "visible_for_annotators": spec["visible_for_annotators"]})
            raise_for(r, f"adding the metadata property '{name}' to {self._where()}")
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
        raise_for(r, f"reading {self._where()}")
        guidelines = r.json().get("guidelines") or ""
        if self.annotation_url in guidelines:
            return
        line = (f"**Start here:** [the records, highest priority first]({self.annotation_url}) "
                "(sorted by priority, descending).")
        r = self.http.patch(f"/api/v1/datasets/{ds.id}", json={"guidelines": f"{line}\n\n{guidelines}".strip()})
        raise_for(r, f"updating the guidelines of {self._where()}")

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


__all__ = ["DatasetSetup"]

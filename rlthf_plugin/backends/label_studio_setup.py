"""Label Studio setup: the project (found, created from the template, or checked), the
priority view of the Data Manager and the webhook, each made once and idempotent.

A mixin of :class:`~rlthf_plugin.backends.label_studio.LabelStudioBackend` (it uses the
backend's client, ``_call`` and ``_check_server``).
"""

from __future__ import annotations

import logging
import secrets

from ..errors import ConfigError
from ..secret import Secret
from .base import same_url
from .label_studio_events import SECRET_HEADER, WEBHOOK_ACTIONS
from .label_studio_template import TEMPLATE, check_label_config, reason_hint

log = logging.getLogger(__name__)

VIEW_TITLE = "rlthf: highest priority first"
VIEW_ORDERING = ["-tasks:data.priority"]


class ProjectSetup:
    """``ensure_project`` and what it makes: the view and the webhook."""

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
        hint = reason_hint(project.label_config or "", where=f"Label Studio project {self.project_id}",
                           field_map=self.field_map)
        if hint:  # once per push (the project is ensured once per backend); `rlthf push` prints it
            self.setup_notes = [hint]
            log.info("%s", hint)
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


__all__ = ["ProjectSetup", "VIEW_ORDERING", "VIEW_TITLE"]

"""What a platform's test environment must provide to run the shared contract tests.

Each platform has a session fixture (``label_studio_env``, ``argilla_env``) returning an
object with this interface, backed by a real server that the harness started on
127.0.0.1. Nothing here is mocked: the backend talks HTTP to that server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rlthf_plugin.backends.base import LabelingBackend
from rlthf_plugin.workspace import Workspace


class PlatformEnv(Protocol):
    #: "label-studio" or "argilla": the backend name of `rlthf push --backend`.
    platform: str

    def configure(self, workspace: Workspace, *, name: str, webhook_url: str | None = None) -> list[str]:
        """Point ``workspace`` at a fresh project/dataset called ``name`` on the server.

        Writes url, project/dataset and webhook settings into the workspace config and the
        secrets (API key, webhook secret) into its secrets file, so that both the CLI and
        the webhook service find them. Returns the extra CLI options of push/pull for it
        (e.g. ``["--create", name]`` or ``["--dataset", name]``).
        """
        ...

    def backend(self, workspace: Workspace) -> LabelingBackend:
        """A backend opened from the workspace's config (the same one the CLI would open)."""
        ...

    def annotate(self, backend: LabelingBackend, external_id: str, label: str, *, annotator: int = 1) -> None:
        """Submit ``label`` (A, B or tie) on one task/record as a second, non-owner user,
        through the platform's own API (so the platform fires its webhooks)."""
        ...

    def remote_count(self, backend: LabelingBackend) -> int:
        """How many tasks/records the project/dataset holds on the server."""
        ...

    def forged_deliveries(self, body: bytes) -> list[dict[str, str]]:
        """Header sets for ``body`` that the receiver must reject with 401 (no secret,
        a wrong secret or signature, a replay...)."""
        ...


def workspace_env(workspace: Workspace) -> dict[str, str]:
    """Environment for a CLI subprocess working on ``workspace``."""
    import os

    return {**os.environ, "RLTHF_WORKSPACE": str(Path(workspace.root)), "HF_HUB_OFFLINE": "1"}

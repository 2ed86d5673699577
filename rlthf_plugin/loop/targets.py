"""Where the tasks go: the labeling targets a workspace remembers.

``rlthf push`` writes the target it used into ``rlthf.toml`` (the platform's section:
URL, project or dataset, field mapping, webhook URL), so ``pull``, ``serve`` and
``run --backend`` reuse it without the options, and ``rlthf targets`` lists them. The
config file is the one place a target lives: editing it by hand is the same as pushing
with options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config, load_config, save_secret, secrets_path, update_config_file
from ..store import pushes

#: backend name -> its config section.
SECTIONS = {"label-studio": "label_studio", "argilla": "argilla"}


@dataclass(frozen=True)
class Target:
    """One remembered target: ``backend``, its ``url``, the project or dataset (``where``),
    the field mapping, the webhook URL and how many pairs were pushed there."""

    backend: str
    url: str
    where: str
    map: str
    webhook_url: str
    pushed: int
    #: Whether an API key is set for the platform (secrets file or environment).
    api_key_set: bool = False


def remember(root: Any, backend_name: str, backend: Any, *, field_map: str | None = None,
             webhook_url: str | None = None, argilla_workspace: str | None = None) -> dict[str, Any]:
    """Write the target a push used into the workspace's ``rlthf.toml``; returns the values.

    The project id Label Studio resolved (from ``--create NAME`` too) is written, so later
    commands open the same project even if it is renamed.
    """
    section = SECTIONS[backend_name]
    values: dict[str, Any] = {"url": backend.url}
    if backend_name == "label-studio":
        values["project"] = int(backend.project_id)
    else:
        values["dataset"] = backend.dataset_name
        if argilla_workspace is not None:
            values["workspace"] = argilla_workspace
    if field_map is not None:
        values["map"] = backend.field_map.to_text()
    if webhook_url is not None:
        values["webhook_url"] = webhook_url
    update_config_file(root, section, **values)
    return values


def remember_key(root: Any, backend_name: str, api_key: Any) -> bool:
    """Store the API key a push used (from the environment) in the workspace's secrets
    file (mode 0600) unless that file already holds one; True when it was stored."""
    import os
    from pathlib import Path

    if not api_key:
        return False
    section = SECTIONS[backend_name]
    # What the files hold, the environment left out (but where the secrets file lives).
    files_only = {k: v for k, v in os.environ.items() if k == "RLTHF_SECRETS_FILE"}
    if getattr(load_config(Path(root), env=files_only), section).api_key:
        return False
    save_secret(secrets_path(Path(root)), section, "api_key", str(api_key))
    return True


def targets(config: Config, ledger: Any) -> list[Target]:
    """The targets the config names (the remembered ones), with the pairs pushed there."""
    counts = pushes.pushes_per_target(ledger)
    out = []
    ls = config.label_studio
    if ls.url and (ls.project is not None or ls.title):
        where = str(ls.project) if ls.project is not None else f"title '{ls.title}'"
        out.append(Target("label-studio", ls.url, f"project {where}", ls.map, ls.webhook_url,
                          counts.get(("label-studio", str(ls.project)), 0), bool(ls.api_key)))
    ar = config.argilla
    if ar.url and ar.dataset:
        key = f"{ar.url.rstrip('/')}#{ar.workspace or '-'}/{ar.dataset}"
        out.append(Target("argilla", ar.url, f"dataset '{ar.dataset}' in workspace '{ar.workspace or '(default)'}'",
                          ar.map, ar.webhook_url, counts.get(("argilla", key), 0), bool(ar.api_key)))
    return out


def serve_plan(config: Config, ledger: Any, given: tuple[str, ...] = ()) -> tuple[tuple[str, ...], int | None, str]:
    """What ``rlthf serve`` runs the loop on, and where it listens.

    Returns ``(backends, port, note)``: ``given`` (``--backend``), else ``[serve]
    backends``, else the workspace's one remembered target; ``port`` is the port of that
    target's remembered ``webhook_url`` (None: none remembered); ``note`` says plainly what
    runs and why (empty when ``--backend`` or ``[serve] backends`` chose).
    """
    from urllib.parse import urlsplit

    found = targets(config, ledger)
    note = ""
    backends = tuple(given) or tuple(b.strip() for b in config.serve.backends.split(",") if b.strip())
    if not backends:
        kinds = sorted({t.backend for t in found})
        if len(kinds) == 1:
            backends = (kinds[0],)
            note = f"running the loop on the remembered {kinds[0]} target ({found[0].url} {found[0].where})"
        elif not kinds:
            note = ("receiving webhooks only, no loop: no --backend, no [serve] backends, and this workspace remembers "
                    "no target (`rlthf push --backend NAME ...` remembers the one it uses)")
        else:
            note = (f"receiving webhooks only, no loop: this workspace remembers targets on {' and '.join(kinds)}; "
                    "pass --backend NAME (repeatable) or set [serve] backends")
    port = None
    for t in found:
        if t.backend in backends and t.webhook_url:
            try:
                port = urlsplit(t.webhook_url).port or port
            except ValueError:
                continue
            if port:
                break
    return backends, port, note


__all__ = ["SECTIONS", "Target", "remember", "remember_key", "serve_plan", "targets"]

"""Labeling platform adapters behind one protocol (:class:`LabelingBackend`).

Each adapter module exposes ``from_config(config, **options) -> LabelingBackend``;
:func:`open_backend` imports it on demand, so an extra is needed only when it is used.
An adapter that keeps state in the workspace (a webhook secret it registered, webhook
ids already seen) accepts a ``workspace`` keyword, passed when the caller has one.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..config import Config
from ..errors import RlthfError
from .base import HumanLabel, LabelingBackend, OnError, PullResult, PushReport, Task

#: backend name -> module under rlthf_plugin.backends.
BACKENDS = {
    "label-studio": "label_studio",
    "argilla": "argilla",
}


def open_backend(name: str, config: Config, *, workspace: Any = None, **options: Any) -> LabelingBackend:
    """The adapter ``name`` configured from ``config`` and CLI ``options`` (None = not given).

    ``workspace`` (a :class:`~rlthf_plugin.workspace.Workspace`) is passed to adapters
    whose ``from_config`` takes it.
    """
    if name not in BACKENDS:
        raise RlthfError(f"unknown backend '{name}'; known: {', '.join(sorted(BACKENDS))}")
    module = importlib.import_module(f"{__name__}.{BACKENDS[name]}")
    given = {k: v for k, v in options.items() if v is not None}
    if workspace is not None and "workspace" in inspect.signature(module.from_config).parameters:
        given["workspace"] = workspace
    return module.from_config(config, **given)


__all__ = ["BACKENDS", "HumanLabel", "LabelingBackend", "OnError", "PullResult", "PushReport", "Task", "open_backend"]

"""Labeling platform adapters behind one protocol (:class:`LabelingBackend`).

Each adapter module exposes ``from_config(config, **options) -> LabelingBackend``;
:func:`open_backend` imports it on demand, so an extra is needed only when it is used.
An adapter that keeps state in the workspace (a webhook secret it registered, webhook
ids already seen) accepts a ``state`` keyword (a :class:`BackendState`), passed when the
caller has a workspace. ``local`` (:mod:`.local`, in memory) is not listed in
:data:`BACKENDS`: it lives in one process, for the demo and tests.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from ..errors import RlthfError
from .base import BackendState, HumanLabel, LabelingBackend, MemoryState, OnError, PullResult, PushReport, Task

if TYPE_CHECKING:
    from ..config import Config

#: backend name -> module under rlthf_plugin.backends.
BACKENDS = {
    "label-studio": "label_studio",
    "argilla": "argilla",
}


def open_backend(name: str, config: Config, *, workspace: Any = None, state: BackendState | None = None,
                 **options: Any) -> LabelingBackend:
    """The adapter ``name`` configured from ``config`` and CLI ``options`` (None = not given).

    ``state`` (default: ``workspace.backend_state()`` when a
    :class:`~rlthf_plugin.workspace.Workspace` is given) goes to adapters whose
    ``from_config`` takes it.
    """
    if name not in BACKENDS:
        raise RlthfError(f"unknown backend '{name}'; known: {', '.join(sorted(BACKENDS))}")
    module = importlib.import_module(f"{__name__}.{BACKENDS[name]}")
    given = {k: v for k, v in options.items() if v is not None}
    if state is None and workspace is not None:
        state = workspace.backend_state()
    if state is not None and "state" in inspect.signature(module.from_config).parameters:
        given["state"] = state
    return module.from_config(config, **given)


__all__ = ["BACKENDS", "BackendState", "HumanLabel", "MemoryState", "LabelingBackend", "OnError", "PullResult", "PushReport", "Task", "open_backend"]

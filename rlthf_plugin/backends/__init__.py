"""Labeling platform adapters behind one protocol (:class:`LabelingBackend`).

Each adapter module exposes ``from_config(config, **options) -> LabelingBackend``;
:func:`open_backend` imports it on demand, so an extra is needed only when it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..config import Config
from ..errors import RlthfError
from .base import HumanLabel, LabelingBackend, OnError, PullResult, PushReport, Task

#: backend name -> module under rlthf_plugin.backends.
BACKENDS = {
    "label-studio": "label_studio",
    "argilla": "argilla",
}


def open_backend(name: str, config: Config, **options: Any) -> LabelingBackend:
    """The adapter ``name`` configured from ``config`` and CLI ``options`` (None = not given)."""
    if name not in BACKENDS:
        raise RlthfError(f"unknown backend '{name}'; known: {', '.join(sorted(BACKENDS))}")
    module = importlib.import_module(f"{__name__}.{BACKENDS[name]}")
    return module.from_config(config, **{k: v for k, v in options.items() if v is not None})


__all__ = ["BACKENDS", "HumanLabel", "LabelingBackend", "OnError", "PullResult", "PushReport", "Task", "open_backend"]

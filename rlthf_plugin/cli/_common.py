"""Shared helpers of the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..workspace import Workspace


def workspace_path(ctx: click.Context) -> Path:
    return (ctx.find_root().obj or {}).get("workspace", Path("."))


def open_workspace(ctx: click.Context) -> Workspace:
    """The workspace named by ``-w``; closed when the command ends."""
    ws = Workspace.open(workspace_path(ctx))
    ctx.call_on_close(ws.close)
    return ws


def echo_table(rows: dict[str, Any], *, as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    width = max((len(k) for k in rows), default=0)
    for key, value in rows.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif value is None:
            value = "-"
        click.echo(f"{key:<{width}}  {value}")

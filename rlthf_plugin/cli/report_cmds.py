"""``rlthf report``: the workspace's HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import open_workspace


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for index.html and its PNGs (default: report/ in the workspace).")
@click.option("--title", default=None, help="Page title (default: 'RLTHF report: WORKSPACE').")
@click.pass_context
def report(ctx: click.Context, out: Path | None, title: str | None) -> None:
    """Write an HTML report: margin curves per iteration with boundaries and batch,
    AI-error precision per batch, labels asked / flipped / kept, labels saved against
    labeling everything, and agreement between annotators. No external assets."""
    from ..report.html import write_report

    ws = open_workspace(ctx)
    path = write_report(ws.ledger, ws.config, out or ws.root / "report", title=title or f"RLTHF report: {ws.root.name}")
    click.echo(f"report: {path}")

"""``rlthf push``, ``rlthf pull``, ``rlthf serve``: the labeling platforms."""

from __future__ import annotations

import click

from .. import sync
from ..backends import BACKENDS, open_backend
from ..config import secrets_path
from ..tasks import all_tasks, asked_tasks
from ._common import open_workspace


def backend_options(f):
    """Options shared by push and pull: which platform and which project/dataset on it."""
    options = [
        click.option("--backend", "backend_name", type=click.Choice(sorted(BACKENDS)), required=True,
                     help="The labeling platform."),
        click.option("--url", default=None, help="Server URL (config: [label_studio]/[argilla] url)."),
        click.option("--project", type=int, default=None, help="Label Studio: an existing project id."),
        click.option("--create", "create_name", default=None,
                     help="Label Studio: create a project with this title from the template."),
        click.option("--dataset", default=None, help="Argilla: dataset name (created from the template if absent)."),
        click.option("--argilla-workspace", "argilla_workspace", default=None, help="Argilla: workspace name."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _backend(ws, backend_name, **options):
    # secrets_file: where an adapter saves a secret it generates (a webhook secret).
    backend = open_backend(backend_name, ws.config, secrets_file=secrets_path(ws.root), **options)
    click.get_current_context().call_on_close(backend.close)
    return backend


@click.command()
@backend_options
@click.option("--iteration", type=int, default=None, help="Push the tasks of this iteration (default: the latest).")
@click.option("--all", "push_all", is_flag=True, help="Push every pair (label everything), not only the asked ones.")
@click.option("--limit", type=int, default=None, help="Push at most this many tasks (highest priority first).")
@click.option("--show-ai/--hide-ai", "show_ai", default=None,
              help="Show the AI label to annotators as a prediction/suggestion (anchoring risk). Default: hidden.")
@click.option("--webhook-url", default=None,
              help="Register a webhook to this URL (the `rlthf serve` receiver) on the project/dataset.")
@click.pass_context
def push(ctx: click.Context, backend_name: str, iteration: int | None, push_all: bool, limit: int | None,
         show_ai: bool | None, webhook_url: str | None, **options) -> None:
    """Push prioritized tasks to Label Studio or Argilla.

    Idempotent: the pair id is each task's key, so a rerun after a crash creates no
    duplicate and no gap.
    """
    ws = open_workspace(ctx)
    tasks = all_tasks(ws.ledger, limit=limit) if push_all else asked_tasks(ws.ledger, iteration, limit=limit)
    if not tasks:
        raise click.ClickException("nothing to push: run 'rlthf select' first, or pass --all")
    backend = _backend(ws, backend_name, show_ai=show_ai, webhook_url=webhook_url, **options)
    report = sync.push(ws.ledger, backend, tasks, iteration=tasks[0].iteration)
    click.echo(f"{backend.platform} {backend.target}: {report.created} created, {report.existing} already there, "
               f"{report.predictions} prediction(s)")
    if report.failed:
        for pid, why in report.failed:
            click.echo(f"  failed {pid}: {why}", err=True)
        raise click.ClickException(f"{len(report.failed)} task(s) failed")


@click.command()
@backend_options
@click.option("--full", is_flag=True, help="Read every label again, not only those since the last pull.")
@click.pass_context
def pull(ctx: click.Context, backend_name: str, full: bool, **options) -> None:
    """Pull completed labels back into the ledger (incremental and idempotent)."""
    ws = open_workspace(ctx)
    backend = _backend(ws, backend_name, **options)
    read, new = sync.pull(ws.ledger, backend, full=full)
    click.echo(f"{backend.platform} {backend.target}: read {read} label(s), {new} new")


@click.command()
@click.option("--host", default=None, help="Interface to listen on (config [serve] host, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (config [serve] port, default 8765).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the webhook receiver: POST /webhooks/label-studio, POST /webhooks/argilla, GET /health.

    Label Studio deliveries must carry the configured secret header; Argilla deliveries
    a valid Standard Webhooks signature. Labels are stored exactly as `rlthf pull` stores
    them, so a lost delivery is repaired by the next pull.
    """
    from ..errors import require
    from ..service import create_app

    uvicorn = require("uvicorn", "serve")
    ws = open_workspace(ctx)
    app = create_app(ws.root)
    uvicorn.run(app, host=host or ws.config.serve.host, port=port or ws.config.serve.port, log_level="warning")

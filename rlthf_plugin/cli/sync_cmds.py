"""``rlthf push``, ``rlthf pull``, ``rlthf serve``: the labeling platforms."""

from __future__ import annotations

import click

from ..loop import sync
from ..backends import BACKENDS, open_backend
from ..loop.tasks import all_tasks, asked_tasks
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
    backend = open_backend(backend_name, ws.config, workspace=ws, **options)
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
@click.option("--allow-duplicate-targets", is_flag=True,
              help="Push pairs that are already on another project/dataset (an annotator on both then has "
                   "one vote: their newest). Without it such a push is refused.")
@click.pass_context
def push(ctx: click.Context, backend_name: str, iteration: int | None, push_all: bool, limit: int | None,
         show_ai: bool | None, webhook_url: str | None, allow_duplicate_targets: bool, **options) -> None:
    """Push prioritized tasks to Label Studio or Argilla.

    Idempotent: the pair id is each task's key, so a rerun after a crash creates no
    duplicate and no gap.
    """
    ws = open_workspace(ctx)
    tasks = all_tasks(ws.ledger, limit=limit) if push_all else asked_tasks(ws.ledger, iteration, limit=limit)
    if not tasks:
        raise click.ClickException("nothing to push: run 'rlthf select' first, or pass --all")
    backend = _backend(ws, backend_name, show_ai=show_ai, webhook_url=webhook_url, **options)
    if tasks[0].iteration is None:  # --all: no iteration's batch, no owner needed
        report = sync.push(ws.ledger, backend, tasks, allow_duplicate_targets=allow_duplicate_targets)
    else:
        from ..loop.owner import IterationOwner

        with IterationOwner(ws.ledger, ttl=ws.config.serve.lease_seconds) as owner:
            report = sync.push(ws.ledger, backend, tasks, iteration=tasks[0].iteration, owner=owner,
                               allow_duplicate_targets=allow_duplicate_targets)
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
@click.option("--backend", "backends", multiple=True, type=click.Choice(sorted(BACKENDS)),
              help="Run the loop on this platform (repeatable; config [serve] backends): push each "
                   "iteration's batch, and start the next iteration when the batch is labeled.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, backends: tuple[str, ...]) -> None:
    """Run the service: webhook receivers, the loop's worker, /health and /metrics.

    POST /webhooks/label-studio and /webhooks/argilla store labels exactly as `rlthf pull`
    does (Label Studio deliveries must carry the configured secret header, Argilla ones a
    valid Standard Webhooks signature). With --backend, a worker pulls each platform at
    start and every [serve] reconcile_minutes (labels whose webhooks were lost), pushes the
    latest iteration's batch, and runs the next iteration once every pushed task has its
    labels; each step is recorded before and after, so a killed service resumes on restart.
    """
    from ..errors import require
    from ..service.app import create_app

    import logging

    uvicorn = require("uvicorn", "serve")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ws = open_workspace(ctx)
    app = create_app(ws.root, backends=backends)
    uvicorn.run(app, host=host or ws.config.serve.host, port=port or ws.config.serve.port, log_level="warning")

"""``rlthf push``, ``rlthf pull``, ``rlthf serve``: the labeling platforms."""

from __future__ import annotations

import ipaddress

import click

from ..loop import sync
from ..backends import BACKENDS, open_backend
from ..loop.tasks import all_tasks, calibrated_asked_tasks
from ._common import configure_escalation, escalation_options, open_workspace


MAP_HELP = ("The project's or dataset's own names: prompt=NAME,response_a=NAME,response_b=NAME,label=NAME "
            "(config: [label_studio]/[argilla] map; README: 'Using an existing project or dataset').")


def backend_options(f=None, *, create: bool = True):
    """Options shared by push and pull: which platform and which project/dataset on it
    (``create``: also ``--create``, which only push has)."""
    if f is None:
        return lambda g: backend_options(g, create=create)
    options = [
        click.option("--backend", "backend_name", type=click.Choice(sorted(BACKENDS)), default=None,
                     help="The labeling platform (default: the one target the workspace remembers)."),
        click.option("--url", default=None, help="Server URL (config: [label_studio]/[argilla] url)."),
        click.option("--project", type=int, default=None, help="Label Studio: an existing project id."),
        *([click.option("--create", "create_name", default=None,
                        help="Label Studio: create a project with this title from the template.")] if create else []),
        click.option("--dataset", default=None, help="Argilla: dataset name (created from the template if absent)."),
        click.option("--argilla-workspace", "argilla_workspace", default=None, help="Argilla: workspace name."),
        click.option("--map", "field_map", default=None, help=MAP_HELP),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _backend_name(ws, given: str | None) -> str:
    """``--backend``, or the only target the workspace remembers (``rlthf targets``)."""
    if given is not None:
        return given
    from ..loop.targets import targets

    known = sorted({t.backend for t in targets(ws.config, ws.ledger)})
    if len(known) == 1:
        return known[0]
    raise click.UsageError("pass --backend label-studio or --backend argilla" + (
        f" (this workspace remembers targets on {' and '.join(known)})" if known else ""))


def _backend(ws, backend_name, **options):
    backend = open_backend(_backend_name(ws, backend_name), ws.config, workspace=ws, **options)
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
    duplicate and no gap. The target (URL, project or dataset, --map, --webhook-url) is
    remembered in rlthf.toml: pull, serve and run --backend reuse it (`rlthf targets`).
    """
    ws = open_workspace(ctx)
    tasks = (all_tasks(ws.ledger, limit=limit) if push_all else
             calibrated_asked_tasks(ws.ledger, ws.config, iteration, limit=limit))
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
    from ..loop.targets import SECTIONS, remember, remember_key

    name = _backend_name(ws, backend_name)
    remember(ws.root, name, backend, field_map=options.get("field_map"),
             webhook_url=webhook_url, argilla_workspace=options.get("argilla_workspace"))
    if remember_key(ws.root, name, getattr(ws.config, SECTIONS[name]).api_key):
        click.echo(f"stored the {name} API key in {ws.root / '.rlthf-secrets.toml'} (mode 0600): later commands "
                   "need no environment variable")
    click.echo(f"{backend.platform} {backend.target}: {report.created} created, {report.existing} already there, "
               f"{report.predictions} prediction(s)")
    for note in getattr(backend, "setup_notes", ()):  # e.g. where annotators see the reason
        click.echo(f"note: {note}")
    start = getattr(backend, "annotation_url", "")
    if start:
        click.echo(f"annotators start here (highest priority first): {start}")
    if report.failed:
        for pid, why in report.failed:
            click.echo(f"  failed {pid}: {why}", err=True)
        raise click.ClickException(f"{len(report.failed)} task(s) failed")


@click.command()
@backend_options(create=False)
@click.option("--full", is_flag=True, help="Read every label again, not only those since the last pull.")
@click.pass_context
def pull(ctx: click.Context, backend_name: str, full: bool, **options) -> None:
    """Pull completed labels back into the ledger (incremental and idempotent)."""
    ws = open_workspace(ctx)
    backend = _backend(ws, backend_name, **options)
    read, new = sync.pull(ws.ledger, backend, full=full)
    click.echo(f"{backend.platform} {backend.target}: read {read} label(s), {new} new")


@click.command()
@click.option("--host", default=None, help="Interface to listen on (config [serve] host, default 127.0.0.1). "
              "0.0.0.0 or a public address lets Label Studio / Argilla on another host reach the webhooks.")
@click.option("--port", type=int, default=None, help="Port (config [serve] port, default 8765).")
@click.option("--backend", "backends", multiple=True, type=click.Choice(sorted(BACKENDS)),
              help="Run the loop on this platform (repeatable; config [serve] backends): push each "
                   "iteration's batch, and start the next iteration when the batch is labeled.")
@click.option("--ml-backend/--no-ml-backend", "ml_backend", default=None,
              help="Serve Label Studio's ML-backend API under /ml (config [serve] ml_backend, default off), "
                   "behind HTTP Basic auth from RLTHF_ML_BASIC_AUTH=user:password or [serve] ml_basic_auth in "
                   ".rlthf-secrets.toml; refused off a loopback host without them.")
@escalation_options
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, backends: tuple[str, ...],
          ml_backend: bool | None, **escalation: tuple) -> None:
    """Run the service: webhook receivers, the loop's worker, /health and /metrics.

    Without --backend (and without [serve] backends) it runs the loop on the workspace's one
    remembered target (`rlthf targets`), or says why not; without --port it listens on that
    target's remembered webhook_url port, else [serve] port. One serve per workspace: a
    second one names the first and exits 1.

    POST /webhooks/label-studio and /webhooks/argilla store labels exactly as `rlthf pull`
    does (Label Studio deliveries must carry the configured secret header and are read back
    from Label Studio with the plugin's own token; Argilla ones need a valid Standard
    Webhooks signature). With --backend, a worker pulls each platform at start and every
    [serve] reconcile_minutes (labels whose webhooks were lost), pushes the latest
    iteration's batch, and runs the next iteration once every pushed task has its labels;
    each step is recorded before and after, so a killed service resumes on restart.

    \b
    Exposing it (README "Exposing the service"):
      --host 0.0.0.0           listen beyond this machine (webhooks from another host)
      webhook secrets          [label_studio]/[argilla] webhook_secret in .rlthf-secrets.toml
      --ml-backend             /ml behind Basic auth (RLTHF_ML_BASIC_AUTH=user:password)
      RLTHF_METRICS_TOKEN      optional bearer token on /metrics
      TLS                      put a reverse proxy (nginx, Caddy) in front; serve speaks HTTP
    Bodies over [serve] max_body_bytes (1 MiB) get 413; [serve] limit_concurrency caps
    connections; /health answers only a state code and the time of the last success.
    """
    import signal
    import socket

    from ..errors import require
    from ..loop.owner import SERVE_LEASE, IterationOwner
    from ..loop.targets import serve_plan
    from ..service.app import create_app

    uvicorn = require("uvicorn", "serve")
    ws = open_workspace(ctx)
    configure_escalation(ws, **escalation)  # remembered in rlthf.toml: the worker reads it
    host = host or ws.config.serve.host
    ml = ws.config.serve.ml_backend if ml_backend is None else ml_backend
    if ml and not ws.config.serve.ml_basic_auth and not _loopback(host):
        raise click.ClickException(f"--ml-backend on {host} needs credentials: set RLTHF_ML_BASIC_AUTH=user:password "
                                   "or [serve] ml_basic_auth in .rlthf-secrets.toml (or listen on 127.0.0.1)")
    if ml and ws.config.serve.ml_basic_auth and ":" not in str(ws.config.serve.ml_basic_auth):
        raise click.ClickException("[serve] ml_basic_auth / RLTHF_ML_BASIC_AUTH must read user:password")
    backends, remembered_port, note = serve_plan(ws.config, ws.ledger, backends)
    if note:
        click.echo(f"rlthf serve: {note}", err=True)
    port = port or remembered_port or ws.config.serve.port
    # One service per workspace: a second serve names the holder and exits 1 (a killed one's
    # lease, held by a process of this host that has exited, is taken over at once).
    with IterationOwner(ws.ledger, name=SERVE_LEASE, ttl=ws.config.serve.lease_seconds):
        # Before anything talks to a platform: a busy port stops here. SO_REUSEADDR, as
        # uvicorn binds: connections a killed service left closing do not block a restart.
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as e:
                raise click.ClickException(f"cannot listen on {host}:{port} ({e.strerror}): another program "
                                           "listens there; pass --port or set [serve] port in rlthf.toml") from e
        app = create_app(ws.root, backends=backends, ml_backend=ml)
        level = (ctx.find_root().obj or {}).get("log_level", "warning")
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: with the
        # default handler that killed the process before this block released the serve lease.
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            uvicorn.run(app, host=host, port=port, log_level=level, access_log=level in ("debug", "info"),
                        limit_concurrency=ws.config.serve.limit_concurrency or None)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as a normal exit (status 0), so ``with`` blocks (the serve lease) unwind."""
    raise SystemExit(0)


def _loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("iteration", type=int)
@click.option("--keep-tasks", is_flag=True,
              help="Leave the batch's open tasks on the platform (marked in the iteration's stats).")
@click.pass_context
def abandon(ctx: click.Context, iteration: int, keep_tasks: bool) -> None:
    """Close a pushed batch that will not be labeled: its labels so far count, its open
    (unlabeled) tasks are removed from the platform (--keep-tasks: left there), and the
    iteration is marked labeled, so `select`, `run` and `serve` go on."""
    from ..loop.batch import abandon_batch
    from ..loop.owner import IterationOwner

    ws = open_workspace(ctx)
    opened = []

    def remove(platform: str, target: str, external_ids: list[str]) -> int:
        backend = open_backend(platform, ws.config, workspace=ws)
        opened.append(backend)
        return backend.remove_tasks(external_ids)

    try:
        with IterationOwner(ws.ledger, ttl=ws.config.serve.lease_seconds) as owner:
            rep = abandon_batch(ws.ledger, ws.config, iteration, owner=owner, remove=None if keep_tasks else remove)
    finally:
        for backend in opened:
            backend.close()
    left = sum(len(v) for v in rep.open_tasks.values())
    click.echo(f"iteration {iteration} abandoned: {rep.answered} answered; {left} open task(s) "
               + ("left on the platform" if keep_tasks else f"removed ({rep.removed})"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def targets(ctx: click.Context, as_json: bool) -> None:
    """List the labeling targets this workspace remembers (written by `rlthf push`)."""
    import json
    from dataclasses import asdict

    from ..loop.targets import targets as remembered

    ws = open_workspace(ctx)
    found = remembered(ws.config, ws.ledger)
    if as_json:
        click.echo(json.dumps([asdict(t) for t in found], indent=2))
        return
    if not found:
        click.echo("no target yet: `rlthf push --backend NAME ...` remembers the one it uses")
    for t in found:
        click.echo(f"{t.backend}: {t.url} {t.where}, {t.pushed} pair(s) pushed"
                   + (f", map {t.map}" if t.map else "") + (f", webhook {t.webhook_url}" if t.webhook_url else "")
                   + (", API key set" if t.api_key_set else ", no API key (see `rlthf push --help`)"))

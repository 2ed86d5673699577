"""``rlthf select``, ``rlthf label``, ``rlthf run``, ``rlthf export``: the RLTHF loop."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import override
from ..vocab import STRATEGIES, Strategy
from ._common import open_workspace


def selection_options(f):
    options = [
        click.option("--budget", type=float, default=None,
                     help="Fraction of the pool humans label per iteration (config selection.budget, default 0.02)."),
        click.option("--shard", type=float, default=None,
                     help="Work on this random fraction of the pool (the paper's 1/4 shard; default 1.0)."),
        click.option("--reward-model", type=click.Choice(["embedding", "transformer"]), default=None,
                     help="embedding: Bradley-Terry head on frozen MiniLM embeddings (CPU); transformer: TRL "
                          "RewardTrainer (needs the [train] extra)."),
        click.option("--folds", type=int, default=None, help="Cross-fitting folds for the margins (0 = in-sample)."),
        click.option("--flip", type=click.Choice(["gated", "always", "never"]), default=None,
                     help="margin-curve: flip right of the reflection point: only on measured evidence (gated), "
                          "always (paper), never."),
        click.option("--strategy", type=click.Choice(list(STRATEGIES)), default=None,
                     help="signals: every judge, order and the RM margin against the AI label, an error model "
                          "learned from the human labels (default); margin-curve: the RLTHF paper's rules."),
        click.option("--primary-judge", default=None,
                     help="The judge whose label is audited (selection.primary_judge; default: most labeled pairs)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _configure(ws, budget, shard, reward_model, folds, flip, strategy, primary_judge):
    """Apply the selection options given, and remember them in rlthf.toml: the next
    command (select, run, serve's worker) uses them without being told again."""
    from ..config import update_config_file

    given = {k: v for k, v in dict(budget=budget, shard=shard, reward_model=reward_model, folds=folds,
                                   flip=flip, strategy=strategy, primary_judge=primary_judge).items()
             if v is not None}
    config = override(ws.config, "selection", **given)
    if given:
        update_config_file(ws.root, "selection", **given)
    return config


def _echo_iteration(rep) -> None:
    c, g = rep.counts, rep.stats["gate"]
    if rep.stats.get("strategy") == Strategy.SIGNALS:
        s = rep.stats
        em = s["error_model"]
        kinds = ", ".join(f"{k} {v}" for k, v in s["kinds"].items() if v)
        click.echo(f"iteration {rep.iteration}: primary judge '{s['primary_judge']}', {s['candidates']} candidate(s), "
                   f"error model on {em['n_labels']} human label(s) ({em['n_errors']} AI errors)")
        if len(s.get("label_judges") or {}) > 1:  # pairs the primary did not judge keep another judge's label
            click.echo("  AI labels audited per judge: " + ", ".join(f"'{j}' {n}" for j, n in s["label_judges"].items()))
        click.echo(f"  ask {c['ask']} ({kinds or 'none'}), flip {c['flip']}, keep {c['keep']}, "
                   f"drop {c['drop']}; {g['reason']}")
        if em["weights"]:
            top = sorted(em["weights"].items(), key=lambda kv: -abs(kv[1]))[:4]
            click.echo("  weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in top))
        return
    curve = rep.stats["curve"]
    click.echo(f"iteration {rep.iteration}: trained on {rep.stats['train']} pair(s), {rep.stats['candidates']} "
               f"candidate(s); elbow {curve['elbow']}, knee {curve['knee']}, reflection {curve['reflection']}")
    click.echo(f"  ask {c['ask']}, flip {c['flip']}, keep {c['keep']}, drop {c['drop']}; flip gate: {g['reason']}")


@click.command()
@selection_options
@click.option("--no-plot", is_flag=True, help="Do not write the margin-curve plot.")
@click.pass_context
def select(ctx: click.Context, no_plot: bool, **options) -> None:
    """Run one RLTHF iteration: train the reward model, compute the margin curve, decide.

    Records flip / ask / keep / drop for every pair without a human label, each with its
    reason (region, margin, rank), in the ledger; `rlthf push` sends the asked pairs to a
    labeling platform, `rlthf label --annotator oracle:FIELD` answers them from ground truth.
    """
    from ..loop.iteration import select_iteration
    from ..report.plots import workspace_plots

    from ..loop.owner import IterationOwner

    ws = open_workspace(ctx)
    config = _configure(ws, **options)
    with IterationOwner(ws.ledger, ttl=config.serve.lease_seconds) as owner:
        rep = select_iteration(ws.ledger, config, progress=True, owner=owner)
    _echo_iteration(rep)
    if not no_plot:
        for path in workspace_plots(ws.ledger, ws.plots_dir, iteration=rep.iteration):
            click.echo(f"  plot: {path}")


@click.command()
@click.option("--annotator", required=True,
              help="oracle:FIELD answers from ground truth: oracle:human = the imported human votes "
                   "(selection.ground_truth platforms), oracle:NAME = a field of the imported rows.")
@click.option("--iteration", type=int, default=None, help="The iteration to answer (default: the latest).")
@click.pass_context
def label(ctx: click.Context, annotator: str, iteration: int | None) -> None:
    """Answer an iteration's asked pairs with a simulated annotator (evaluation, demo)."""
    from ..loop.oracle import label_with_oracle

    from ..loop.owner import IterationOwner

    ws = open_workspace(ctx)
    with IterationOwner(ws.ledger, ttl=ws.config.serve.lease_seconds) as owner:
        rep = label_with_oracle(ws.ledger, ws.config, annotator, iteration=iteration, owner=owner)
    _echo_label(rep, ws)


def _echo_label(rep, ws) -> None:
    from ..store.iterations import iteration_stats

    ev = iteration_stats(ws.ledger, rep.iteration).get("eval") or {}
    prec = "-" if rep.precision is None else f"{rep.precision:.2f}"
    line = f"  labeled {rep.answered}/{rep.asked} ({rep.new} new); AI-error precision of the batch {prec}"
    if ev.get("curated_accuracy") is not None:
        line += (f"; curated accuracy {ev['curated_accuracy']:.4f} (AI only {ev['ai_accuracy']:.4f}, "
                 f"{ev['ai_errors_fixed']}/{ev['ai_errors']} AI errors fixed)")
    click.echo(line)


@click.command()
@click.option("--iterations", "n_iterations", type=int, default=1, show_default=True)
@selection_options
@click.option("--annotator", default=None,
              help="oracle:FIELD labels each batch at once; without it, --backend pushes the batch and returns.")
@click.option("--backend", "backend_name", default=None, help="label-studio or argilla: push the batch there.")
@click.pass_context
def run(ctx: click.Context, n_iterations: int, annotator: str | None, backend_name: str | None, **options) -> None:
    """Loop select -> label -> retrain.

    With --annotator oracle:FIELD every batch is answered at once and the loop goes on.
    With --backend the first iteration's batch is pushed to the platform and the command
    returns: `rlthf pull` (or `rlthf serve`) brings the labels back, then run again.
    """
    from ..loop.iteration import select_iteration
    from ..loop.oracle import flip_precision, label_with_oracle
    from ..report.plots import workspace_plots

    if (annotator is None) == (backend_name is None):
        raise click.UsageError("give exactly one of --annotator oracle:FIELD or --backend NAME")
    from ..loop.owner import IterationOwner

    ws = open_workspace(ctx)
    config = _configure(ws, **options)
    paths = []
    # One owner for the whole run: no other process moves an iteration between its steps.
    with IterationOwner(ws.ledger, ttl=config.serve.lease_seconds) as owner:
        for _ in range(n_iterations):
            rep = select_iteration(ws.ledger, config, progress=True, owner=owner)
            _echo_iteration(rep)
            fp = flip_precision(ws.ledger, config, rep.iteration)
            if fp is not None:
                click.echo(f"  flip precision (ground truth): {fp:.2f}")
            if backend_name is not None:
                from ..backends import open_backend
                from ..loop import sync
                from ..loop.tasks import calibrated_asked_tasks

                backend = open_backend(backend_name, config, workspace=ws)
                ctx.call_on_close(backend.close)
                tasks = calibrated_asked_tasks(ws.ledger, config, rep.iteration)
                report = sync.push(ws.ledger, backend, tasks, iteration=rep.iteration, owner=owner)
                click.echo(f"  pushed to {backend.platform} {backend.target}: {report.created} created, "
                           f"{report.existing} already there; pull the labels, then run again")
                return
            _echo_label(label_with_oracle(ws.ledger, config, annotator, iteration=rep.iteration, owner=owner), ws)
            paths = workspace_plots(ws.ledger, ws.plots_dir, iteration=rep.iteration)
    click.echo(f"plots: {', '.join(str(p) for p in paths)} (one margin curve per iteration)")


@click.command()
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="A .jsonl file, or a folder (curated.jsonl is written in it).")
@click.option("--only", default=None,
              help="Comma-separated label sources to keep: human, flipped, trusted_ai, ai, rm.")
@click.pass_context
def export(ctx: click.Context, out: Path, only: str | None) -> None:
    """Write the curated set: prompt / chosen / rejected per pair, with its label source.

    Each line also has pair_id, label_source (human, flipped, trusted_ai, ai, rm),
    iteration and amplification (alpha for human pairs, else 1): ready for TRL.
    """
    from collections import Counter

    from ..io.export import iter_curated_rows, write_export

    ws = open_workspace(ctx)
    sources = [s.strip() for s in only.split(",") if s.strip()] if only else None
    counts: Counter = Counter()

    def counted(rows):  # streamed to the file; only the counts stay in memory
        for row in rows:
            counts[row["label_source"]] += 1
            yield row

    path = write_export(counted(iter_curated_rows(ws.ledger, only=sources, config=ws.config)), out)
    click.echo(f"wrote {sum(counts.values())} pair(s) to {path} "
               f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})")

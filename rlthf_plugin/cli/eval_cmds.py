"""``rlthf evaluate``: score a reward model on human-labeled pairs it never trained on."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click


@click.command()
@click.option("--rm", "rm_spec", required=True,
              help="A reward model folder saved by `rlthf train reward`, or 'workspace': the workspace's "
                   "configured reward model, trained here on its curated set without the scored pairs.")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Human-labeled pairs in any import format (repeatable).")
@click.option("--format", "fmt", default=None, help="Force the row format of --data (default: detected).")
@click.option("--split", type=float, default=None,
              help="Score the workspace's own human labels that this fraction holds out by pair "
                   "(train with `rlthf train reward --exclude-split F` so they are never trained on).")
@click.option("--skip-invalid", is_flag=True, help="Leave out rows of --data that cannot be read (counted).")
@click.option("--json", "as_json", is_flag=True, help="Write the result as JSON to stdout.")
@click.option("--no-card", is_flag=True, help="Do not write the result into the reward model's model card.")
@click.pass_context
def evaluate(ctx: click.Context, rm_spec: str, data: tuple[Path, ...], fmt: str | None, split: float | None,
             skip_invalid: bool, as_json: bool, no_card: bool) -> None:
    """Accuracy of a reward model against human labels, with a 95% Wilson interval, per
    source and category; human ties are counted apart.

    \b
    rlthf evaluate --rm rm/ --data test.jsonl
    rlthf evaluate --rm workspace --split 0.2 --json
    """
    from ..loop.evaluate import fit_workspace_model, load_trl_reward_model, read_eval_pairs, score, \
        workspace_eval_pairs
    from ..models.card import add_evaluation
    from ..models.evaluation import markdown

    if bool(data) == (split is not None):
        raise click.UsageError("give either --data FILE or --split F (the workspace's held-out human labels)")
    ws = None
    if split is not None or rm_spec == "workspace":
        from ._common import open_workspace

        ws = open_workspace(ctx)
    skipped = 0
    if data:
        pairs, skipped = read_eval_pairs(data, fmt=fmt, skip_invalid=skip_invalid)
        if skipped:
            click.echo(f"--skip-invalid: {skipped} invalid row(s) left out", err=True)
    else:
        pairs = workspace_eval_pairs(ws, split)
    trained = None
    if rm_spec == "workspace":
        model, trained = fit_workspace_model(ws, exclude=pairs.pair_id, split=split or 0.0)
    else:
        model = load_trl_reward_model(rm_spec, split=split or 0.0)
    result = score(model, pairs)
    what = f"--split {split:g} of {ws.root}" if split is not None else ", ".join(str(p) for p in data)
    command = _command(rm_spec, data, fmt, split, skip_invalid)
    if as_json:
        out = {"rm": rm_spec, "data": what, "command": command, "skipped_rows": skipped, **result.to_dict()}
        if trained is not None:
            out["trained_on"] = trained
        click.echo(json.dumps(out, indent=2, allow_nan=False))
    else:
        click.echo(f"reward model {rm_spec} on {what}")
        click.echo(f"accuracy {result.overall.text()}  (95% Wilson interval; {result.human_ties} human ties "
                   f"counted apart, {result.unlabeled} without a human label, {result.model_ties} not ordered)")
        for title, groups in (("source", result.by_source), ("category", result.by_category)):
            if len(groups) > 1 or (groups and title == "category"):
                width = max(len(k) for k in groups)
                for k, v in groups.items():
                    click.echo(f"  {title} {k:<{width}}  {v.text()}")
        if trained is not None:
            click.echo(f"trained here on {trained['train']['pairs']} curated pairs "
                       f"({trained['left_out']} left out: scored or held out)")
    if rm_spec != "workspace" and not no_card:
        path = add_evaluation(rm_spec, markdown(result, title=f"Evaluation: {what}") + f"\n\nCommand: `{command}`")
        click.echo(f"model card: {path}", err=True)


def _command(rm_spec: str, data, fmt, split, skip_invalid: bool = False) -> str:
    parts = ["rlthf", "evaluate", "--rm", shlex.quote(rm_spec)]
    for d in data:
        parts += ["--data", shlex.quote(str(d))]
    if fmt:
        parts += ["--format", fmt]
    if skip_invalid:
        parts.append("--skip-invalid")
    if split is not None:
        parts += ["--split", f"{split:g}"]
    return " ".join(parts)


__all__ = ["evaluate"]

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


def echo_judges(summary: dict[str, Any]) -> None:
    """The judges part of ``rlthf status``: votes per judge, agreement, error-model weights."""
    per = summary.get("judges") or {}
    if not per:
        return
    names = list(per)
    click.echo(f"\nAI votes per judge (primary judge: '{summary['primary_judge']}'; audited: pairs whose AI "
               "label is that judge's, the primary's where it voted, else the best-covered judge's; "
               f"{summary.get('inconsistent', 0)} audited label(s) whose orders disagree)")
    width = max(len(n) for n in names)
    click.echo(f"  {'judge':<{width}}  {'pairs':>6} {'audited':>7} {'votes':>6} {'both orders':>11} {'split':>6}")
    for n, v in per.items():
        click.echo(f"  {n:<{width}}  {v['pairs']:>6} {v.get('audited', 0):>7} {v['votes']:>6} {v['both_orders']:>11} "
                   f"{v['split_orders']:>6}")
    if len(names) > 1:
        click.echo("judge x judge agreement (pairs where both name a winner)")
        short = [f"j{k}" for k in range(len(names))]
        click.echo(f"  {'':<{width + 4}}" + "".join(f"{s:>8}" for s in short))
        for k, a in enumerate(names):
            cells = []
            for b in names:
                agree, n = summary["agreement"][a][b]
                cells.append(f"{agree / n:>8.2f}" if n else f"{'-':>8}")
            click.echo(f"  {short[k]:<3} {a:<{width}}" + "".join(cells))
    em = summary.get("error_model")
    if em and em.get("weights"):
        click.echo(f"error model (iteration {em['iteration']}, {em['n_labels']} human labels, {em['n_errors']} "
                   f"AI errors): weight per signal, + = evidence the primary label is wrong")
        for k, w in sorted(em["weights"].items(), key=lambda kv: -abs(kv[1])):
            click.echo(f"  {k:<{width + 12}} {w:+.3f}")


def escalation_options(f):
    """``--escalate-judge/--escalate-template/--escalate-budget`` (repeatable, cheap to strong)."""
    options = [
        click.option("--escalate-judge", "escalate_judges", multiple=True,
                     help="Before each human batch, ask this judge (openai:MODEL, hf:NAME_OR_PATH or "
                          "recorded:FILE[#JUDGE]) in both orders where its answer is worth the most; repeat "
                          "for a chain, cheap to strong. Config: [escalation] judges."),
        click.option("--escalate-template", "escalate_templates", multiple=True,
                     help="The judge template of each --escalate-judge (e.g. rules-first); one, or one per "
                          "judge. Config: [escalation] templates."),
        click.option("--escalate-budget", "escalate_budgets", multiple=True, type=float,
                     help="Share of the pool each escalation judge is asked per iteration; one, or one per "
                          "judge. Config: [escalation] budgets (default 0.1)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def configure_escalation(ws: Workspace, escalate_judges: tuple[str, ...] = (), escalate_templates: tuple[str, ...] = (),
                         escalate_budgets: tuple[float, ...] = ()):
    """Apply the escalation options given and remember them in rlthf.toml (as the selection
    options are); returns the effective config, its chain checked."""
    from ..config import override, update_config_file
    from ..loop.cascade import cascade

    given: dict[str, Any] = {}
    if escalate_judges:
        given["judges"] = ",".join(escalate_judges)
    if escalate_templates:
        given["templates"] = ",".join(escalate_templates)
    if escalate_budgets:
        given["budgets"] = [float(b) for b in escalate_budgets]
    config = override(ws.config, "escalation", **given)
    cascade(config)  # a bad chain stops here, before anything is written
    if given:
        update_config_file(ws.root, "escalation", **given)
    return config

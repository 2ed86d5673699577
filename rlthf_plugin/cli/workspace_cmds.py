"""``rlthf init``, ``rlthf import``, ``rlthf status``."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config
from ..io.formats import ROW_FORMATS
from ..io.importer import import_files
from ..loop.quality import quality_summary
from ..pairs import A, B
from ..store.votes import judges_overview
from ..workspace import Workspace
from ._common import echo_judges, echo_table, open_workspace, workspace_path
from .quality_view import echo_quality


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--ledger-url", default=None,
              help="SQLAlchemy URL of the ledger (default: SQLite ledger.db in the workspace; "
                   "e.g. postgresql+psycopg://user@host/db).")
@click.pass_context
def init(ctx: click.Context, directory: Path | None, ledger_url: str | None) -> None:
    """Create a workspace: rlthf.toml and the ledger.

    DIRECTORY defaults to the -w workspace (the current folder). An existing
    rlthf.toml is kept; the ledger is created or migrated to the current schema.
    API keys never go into rlthf.toml: set RLTHF_LABEL_STUDIO_API_KEY,
    RLTHF_ARGILLA_API_KEY, ... or write them to .rlthf-secrets.toml.
    """
    root = directory or workspace_path(ctx)
    cfg = Config()
    if ledger_url:
        cfg.ledger.url = ledger_url
    ws = Workspace.init(root, cfg)
    ws.close()
    click.echo(f"workspace ready: {ws.root} (config {ws.root / 'rlthf.toml'})")


@click.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(sorted(ROW_FORMATS)), default=None,
              help="Row format; detected from each record's fields when omitted.")
@click.option("--skip-invalid", is_flag=True,
              help="Import the valid rows and list the invalid ones instead of importing nothing.")
@click.option("--label-source", type=click.Choice(["human", "ai"]), default="human", show_default=True,
              help="For chosen/rejected data: whether the preference is a human or an AI label.")
@click.option("--judge", default="import", show_default=True,
              help="Judge name for AI labels that do not name their judge.")
@click.pass_context
def import_(ctx: click.Context, files: tuple[str, ...], fmt: str | None, skip_invalid: bool,
            label_source: str, judge: str) -> None:
    """Import preference data into the ledger.

    FILES: .jsonl, .jsonl.gz, .json, .zip (of JSON files), .parquet, a folder saved with
    datasets' save_to_disk, or hf://NAME[:SPLIT] (needs the network).

    Formats: merged (prompt, response_a, response_b, ai_label, human_label...),
    trl (prompt, chosen, rejected), hh (HH-RLHF dialogues), mtbench, pandalm,
    pandalm-judge, llmeval2, multi (prompt + list of responses). Rows with the same
    prompt are grouped as that prompt's responses (for `rlthf candidates`).

    The import is one transaction: an invalid row (a missing or non-string field, bad
    JSON or bytes, an unknown label, identical responses) makes it import nothing and
    name each bad line, unless --skip-invalid. Re-importing a file adds nothing twice.
    """
    ws = open_workspace(ctx)
    report = import_files(ws.ledger, files, fmt=fmt, skip_invalid=skip_invalid, judge=judge,
                          label_source=label_source, progress=True)
    click.echo(f"read {report.rows} valid row(s) ({', '.join(f'{k}: {v}' for k, v in report.formats.items())})")
    click.echo(f"new: {report.new_pairs} pair(s), {report.new_responses} response(s), "
               f"{report.new_ai_labels} AI label(s), {report.new_human_labels} human label(s)")
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} invalid row(s):", err=True)
        for problem in report.skipped:
            click.echo(f"  {problem}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--pair", "pair_id", default=None,
              help="Show one pair's decisions with the full machine reason (what labelers do not see).")
@click.pass_context
def status(ctx: click.Context, as_json: bool, pair_id: str | None) -> None:
    """Counts: pairs, AI- and human-labeled pairs, their disagreement, iterations, pushes.

    A pair with several votes (repeated rows, several annotators) counts once; votes
    that disagree with each other are counted as conflicts. Then the AI votes per judge
    (both orders, split orders), the judge x judge agreement on pairs where both name a
    winner, the primary judge, and the error model's per-signal weights. With --pair, the
    pair's decisions per iteration: action, priority and the machine reason.
    """
    ws = open_workspace(ctx)
    if pair_id is None:
        judges, audited = judges_overview(ws.ledger, ws.config.selection.primary_judge)  # one read of the votes
        rows = ws.ledger.status()
        from ..service.health import HEALTH_KEY

        service = ws.ledger.get_state(HEALTH_KEY)
        if service:  # what `rlthf serve`'s /health last reported, with the details it keeps private
            rows["service_health"] = service
        if judges["judges"]:
            # AI counts are the audited label per pair (every order and judge is a vote).
            ai = audited.labels
            human = {pid: m.label for pid, m in ws.ledger.human_majority().items()}
            both = [p for p, h in human.items() if h in (A, B) and ai.get(p) in (A, B)]
            rows.update(ai_labeled=len(ai), ai_label_votes=sum(j["votes"] for j in judges["judges"].values()),
                        both_labeled_with_winner=len(both),
                        ai_human_disagreement=sum(human[p] != ai[p] for p in both) / len(both) if both else None)
        quality = quality_summary(ws.ledger, ws.config)
        from ..loop.escalation import spend

        priced = ws.config.escalation.judges or ws.config.cost.human_label  # else nothing to show
        costs = [r for r in spend(ws.ledger, ws.config) if r["cost"] or r["judge_calls"]] if priced else []
        from ..loop.batch import latest_progress

        progress = latest_progress(ws.ledger, ws.config)  # the open iteration: state, pushed, labeled, pending
        rows.update(latest_iteration=None if progress is None else progress["iteration"], latest_progress=progress)
        if as_json:
            echo_table({**rows, **judges, **({"spend": costs} if costs else {}), "quality": quality}, as_json=True)
            return
        if progress is not None:
            rows["latest_progress"] = (
                f"{progress['state']}: {progress['asked']} asked, {progress['pushed']} pushed, "
                f"{progress['labeled']} labeled, {progress['pending']} pending"
                + "".join(f"; {k} {v['target']}: {v['pushed']} pushed, {v['labeled']} labeled, {v['pending']} pending"
                          for k, v in progress["per_platform"].items()))
        echo_table(rows)
        echo_judges(judges)
        for r in costs:  # per iteration, at [cost] prices
            calls = ", ".join(f"{j} {n}" for j, n in r["judge_calls"].items()) or "none"
            per = f"{r['errors_per_cost']:.3f}" if r["errors_per_cost"] is not None else "-"
            click.echo(f"spend iteration {r['iteration']}: {r['human_labels']} human label(s) {r['human_cost']:.2f}, "
                       f"escalation calls {calls} {r['judge_cost']:.2f}; total {r['cost']:.2f}; "
                       f"AI errors found {r['errors_found']} ({per} per unit cost)")
        echo_quality(quality)
        return
    from ..backends.reasons import machine_reason
    from ..store.iterations import pair_decisions

    rows = pair_decisions(ws.ledger, pair_id)
    if not rows:
        raise click.ClickException(f"no decision about pair {pair_id} (not a candidate of any iteration yet)")
    if as_json:
        echo_table({f"iteration {r['iteration']}": {"action": r["action"], "priority": r["priority"],
                                                    "reason": r["reason"]} for r in rows}, as_json=True)
        return
    for r in rows:
        click.echo(f"iteration {r['iteration']}: {r['action']} · {machine_reason(r['reason'], r['priority'])}")

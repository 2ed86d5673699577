"""``rlthf label-ai``: AI labels from an LLM judge, stored in the ledger."""

from __future__ import annotations

import click

from ..config import override
from ._common import echo_table, open_workspace


@click.command("label-ai")
@click.option("--judge", default=None,
              help="openai:MODEL (any OpenAI-compatible endpoint), hf:NAME_OR_PATH (local transformers model) or "
                   "recorded:FILE[#JUDGE] (verdicts computed elsewhere, merged import format with ai_order). "
                   "Config: [judge] judge.")
@click.option("--base-url", default=None,
              help="OpenAI-compatible endpoint up to /v1, e.g. http://127.0.0.1:8000/v1 (default: OpenAI). "
                   "The key comes from OPENAI_API_KEY or [judge] api_key in the secrets file.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Label at most this many pairs.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Requests in flight at once (openai judge). Config: [judge] concurrency.")
@click.option("--task", default=None,
              help="Task type of the pairs: dialogue (helpful/honest/harmless) or summarization. "
                   "Config: [judge] task.")
@click.option("--template", default=None,
              help="A judge template file (copy templates/judge/pairwise.toml to edit), or a packaged one by "
                   "name: rules-first (the judge writes its rules and a reference answer, then compares).")
@click.option("--only", "only", type=click.Choice(["suspects", "untrusted"]), default=None,
              help="suspects: judge only the pairs the latest iteration found most suspect (escalation: "
                   "a second judge or protocol where it matters, cost proportional to --top). untrusted: the "
                   "pairs neither trusted, flipped nor asked by the latest iteration (the escalation list), "
                   "most suspect first.")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="With --only suspects (required) or untrusted (default: all): how many pairs.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per request before it is retried (slow local servers need more). Config: [judge] timeout.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Tokens the openai judge may write.")
@click.option("--max-chars", type=click.IntRange(min=0), default=None,
              help="Cut the input and each response to this many characters in the prompt (0: no cut).")
@click.option("--single-order", type=click.Choice(["ab", "ba"]), default=None,
              help="Judge one order only (no position-bias check); stored as judge NAME[ab].")
@click.option("--relabel", is_flag=True, help="Also judge pairs that already have another AI label.")
@click.option("--retry-parse-errors", is_flag=True, help="Ask again the calls whose answers could not be parsed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def label_ai(ctx: click.Context, judge: str | None, base_url: str | None, limit: int | None,
             concurrency: int | None, task: str | None, template: str | None, timeout: float | None,
             max_tokens: int | None,
             max_chars: int | None, single_order: str | None, relabel: bool, retry_parse_errors: bool,
             as_json: bool, only: str | None, top: int | None) -> None:
    """Label pairs with an LLM judge, in both orders; a flip is a tie.

    Answers are cached in the ledger by (pair, judge, prompt version, order): a rerun
    after a crash or a kill asks nothing twice. Unparsable answers are stored as
    parse_error with their raw text.
    """
    from ..loop.judging import label_pairs
    from ..models.judge import open_judge
    from ..models.judge.prompt import ORDERS, load_template

    ws = open_workspace(ctx)
    cfg = override(ws.config, "judge", judge=judge, base_url=base_url, concurrency=concurrency, task=task,
                   template=template, timeout=timeout, max_tokens=max_tokens, max_chars=max_chars).judge
    if not cfg.judge:
        raise click.UsageError("give --judge openai:MODEL, hf:NAME_OR_PATH or recorded:FILE (or set [judge] judge)")
    if (only == "suspects") != (top is not None) and only != "untrusted":
        raise click.UsageError("--only suspects and --top F go together")
    pair_ids = None
    if only == "suspects":
        from ..store.votes import top_suspects

        pair_ids = top_suspects(ws.ledger, top)
        if not pair_ids:
            raise click.UsageError("no suspects yet: run 'rlthf select' (or 'run') first")
    if only == "untrusted":
        from ..loop.quality import untrusted_pairs

        pair_ids = untrusted_pairs(ws.ledger, ws.config, top)
        if not pair_ids:
            raise click.UsageError("no untrusted pair: run 'rlthf select' (or 'run') first, or every AI label "
                                   "is trusted, flipped or asked")
    tmpl = load_template(cfg.template or None)
    the_judge = open_judge(cfg.judge, cfg, template=tmpl)
    report = label_pairs(ws.ledger, the_judge, tmpl, task=cfg.task,
                         orders=(single_order,) if single_order else ORDERS, limit=limit, relabel=relabel,
                         max_chars=cfg.max_chars or None, retry_parse_errors=retry_parse_errors, pair_ids=pair_ids)
    rows = {
        "judge": report.judge, "prompt_version": report.prompt_version, "pairs": report.pairs,
        "asked": report.asked, "cached": report.cached, "verdicts": report.verdicts,
        "prompt_tokens": report.prompt_tokens, "completion_tokens": report.completion_tokens,
        "seconds": round(report.seconds, 2), "cost_usd": report.cost,
    }
    echo_table(rows, as_json=as_json)

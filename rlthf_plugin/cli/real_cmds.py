"""``rlthf candidates``: candidate pairs from multi-response prompts (REAL)."""

from __future__ import annotations

import click
import numpy as np

from ..loop.candidates import build_candidates
from ..models.llm_embeddings import load_embedder
from ..selection.real import STRATEGIES
from ._common import open_workspace


def _embedder_spec(spec: str) -> str:
    """A config value like ``all-MiniLM-L6-v2`` means a sentence-transformers model."""
    if spec == "packaged" or spec.startswith(("packaged:", "st:", "hf:")):
        return spec
    return f"st:{spec}"


@click.command()
@click.option("--strategy", type=click.Choice(list(STRATEGIES)), default="easy", show_default=True,
              help="easy: least similar pairs; hard: most similar; centroid: nearest response to each "
                   "of 2 k-means centroids; random: uniform (the baseline).")
@click.option("--per-prompt", "per_prompt", type=click.IntRange(min=1), default=1, show_default=True,
              help="Pairs per prompt (K); a prompt with fewer pairs gives all of them.")
@click.option("--embedder", default=None,
              help="packaged (bundled all-MiniLM-L6-v2), st:NAME_OR_PATH (sentence-transformers) or "
                   "hf:NAME_OR_PATH (a causal LM: mean of its last hidden layer). "
                   "Default: [embedding] model of rlthf.toml.")
@click.option("--max-length", type=click.IntRange(min=1), default=None,
              help="Tokens per response (default: [embedding] max_length).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1... (default: the GPU when present).")
@click.option("--seed", type=int, default=None, help="Seed of random and centroid (default: [selection] seed).")
@click.option("--dry-run", is_flag=True, help="Choose and report, write nothing.")
@click.pass_context
def candidates(ctx: click.Context, strategy: str, per_prompt: int, embedder: str | None, max_length: int | None,
               device: str | None, seed: int | None, dry_run: bool) -> None:
    """Create candidate pairs from prompts with several responses.

    Embeds each response without its prompt, scores the pairs of every prompt by cosine
    similarity and stores PER_PROMPT pairs per prompt with origin "candidates" and the
    similarity and strategy in their metadata. Re-running adds nothing twice; a chosen
    pair already in the ledger is kept as it is.
    """
    ws = open_workspace(ctx)
    cfg = ws.config
    emb = load_embedder(_embedder_spec(embedder or cfg.embedding.model), batch_size=cfg.embedding.batch_size,
                        max_length=max_length or cfg.embedding.max_length, device=device)
    report = build_candidates(ws.ledger, emb, strategy=strategy, per_prompt=per_prompt,
                              seed=cfg.selection.seed if seed is None else seed, dry_run=dry_run)
    click.echo(f"{report.prompts} prompt(s) with 2+ responses, {report.responses} response(s)")
    if not report.selected:
        click.echo("no candidate pairs: import prompts with several responses first")
        return
    sim = np.asarray(report.similarity)
    click.echo(f"{strategy}: {report.selected} pair(s) chosen, similarity min {sim.min():.3f} / "
               f"median {np.median(sim):.3f} / max {sim.max():.3f}")
    verb = "would add" if dry_run else "added"
    click.echo(f"{verb} {report.new_pairs} new pair(s); {report.existing} already in the ledger")

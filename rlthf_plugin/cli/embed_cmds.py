"""``rlthf embed``: fill the workspace's vector store ahead of ``select`` (shardable)."""

from __future__ import annotations

import click

from ._common import open_workspace


@click.command()
@click.option("--only", type=click.Choice(["pending"]), default=None,
              help="pending: only the texts of pairs without a human label (the pairs select decides on).")
@click.option("--shard", default=None, metavar="I/N",
              help="Embed shard I of N (0-based, by text id). Default: RANK/WORLD_SIZE under torchrun or "
                   "accelerate launch, else everything.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def embed(ctx: click.Context, only: str | None, shard: str | None, no_progress: bool) -> None:
    """Embed every prompt and response of the workspace that the vector store lacks.

    Vectors go to the workspace's vector store (vectors/, one memory-mapped matrix per
    embedder); appends are atomic, so a killed run is rerun to complete it. Under
    `torchrun --nproc_per_node N -m rlthf_plugin embed` (or `accelerate launch`) each rank
    embeds its shard on its own GPU; several processes append to one store without
    clashing. `rlthf select` uses the stored vectors and embeds any text still missing.
    """
    from ..loop.embedding import Shard, embed_workspace, finish_ranks

    ws = open_workspace(ctx)
    part = Shard.parse(shard) if shard else (Shard.from_env() or Shard())
    rep = embed_workspace(ws.ledger, ws.config, shard=part, only_pending=only == "pending",
                          progress=not no_progress)
    click.echo(f"shard {rep.shard}: {rep.pairs:,} pairs read, {rep.texts:,} texts of this shard, "
               f"{rep.embedded:,} embedded now (the rest were stored)")
    done = finish_ranks(ws.ledger, ws.config, only_pending=only == "pending")
    if done is not None:
        click.echo(f"all ranks done: {done:,} text(s) still missing from the store")

"""Fill the workspace's vector store ahead of ``select``: ``rlthf embed``, shardable.

Every prompt and response of the workspace (or of the pending pairs: no counted human
label yet) whose vector the store lacks is embedded and appended (the store's appends are
atomic and locked: :mod:`rlthf_plugin.store.vector_files`). Pairs are read a page at a time,
so memory is one page plus the model.

Sharding: shard ``i`` of ``n`` embeds the texts whose id falls in it
(:func:`shard_of`, by text hash: the same split whatever the order or the process), so
``n`` processes (``--shard i/n``, or the ranks of ``torchrun`` / ``accelerate launch``, read
from ``RANK`` / ``WORLD_SIZE``, each on its own device ``LOCAL_RANK``) together fill the
store exactly once, and any of them can be rerun alone. ``select`` embeds what is still
missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..config import Config, ground_truth_platforms
from ..errors import ConfigError
from ..models.embedder import Embedder, SentenceEmbedder
from ..models.vectors import fill_store, is_array_store
from ..pairs import PreferencePair, text_hash
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.pairs import iter_pair_pages
from ..store.schema import pairs as pairs_table

#: Pairs read (and their missing texts embedded) at a time.
PAGE = 20_000


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"i/n"`` with ``0 <= i < n``."""
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard must be i/n (e.g. 0/4), got {text!r}") from None
        if not 0 <= i < n:
            raise ConfigError(f"--shard {text}: i must be in [0, n)")
        return cls(i, n)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Shard | None":
        """This rank's shard under ``torchrun`` / ``accelerate launch`` (``RANK``, ``WORLD_SIZE``)."""
        env = os.environ if env is None else env
        if "RANK" in env and "WORLD_SIZE" in env:
            return cls(int(env["RANK"]), int(env["WORLD_SIZE"]))
        return None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(hashes: list[str], count: int) -> np.ndarray:
    """(N,) int: the shard of each text id (its first 8 hex digits modulo ``count``)."""
    return np.fromiter((int(h[:8], 16) % count for h in hashes), dtype=np.int64, count=len(hashes))


@dataclass
class EmbedReport:
    shard: Shard
    pairs: int = 0        # pairs read
    texts: int = 0        # distinct texts of this shard seen (a text shared by pages counts once a page)
    embedded: int = 0     # texts encoded and stored by this run


def pending_filter(ledger: Ledger, config: Config) -> Callable[[PreferencePair], bool]:
    """Whether a pair is pending: no counted human label (the pairs ``select`` decides on)."""
    truth = ground_truth_platforms(config)
    labeled = {r.pair_id for r in label_rows(ledger) if r.platform not in truth}
    return lambda p: p.id not in labeled


def shard_texts(pages: Iterator[list[PreferencePair]], shard: Shard,
                keep: Callable[[PreferencePair], bool] | None = None) -> Iterator[tuple[int, list[str]]]:
    """(pairs in the page, this shard's distinct texts of the page) for each page of pairs."""
    for page in pages:
        texts = list(dict.fromkeys(t for p in page if keep is None or keep(p)
                                   for t in (p.prompt, p.response_a, p.response_b)))
        if shard.count > 1:
            mine = shard_of([text_hash(t) for t in texts], shard.count) == shard.index
            texts = [t for t, m in zip(texts, mine) if m]
        yield len(page), texts


def embed_workspace(ledger: Ledger, config: Config, *, shard: Shard = Shard(), only_pending: bool = False,
                    embedder: Embedder | None = None, progress: bool = False, chunk: int = 2048) -> EmbedReport:
    """Embed this shard's texts of the workspace that the vector store lacks (see the module docstring)."""
    from tqdm.auto import tqdm

    if embedder is None:
        emb = config.embedding
        embedder = SentenceEmbedder(emb.model, batch_size=emb.batch_size, max_length=emb.max_length,
                                    backend=emb.backend, device=rank_device())
    keep = pending_filter(ledger, config) if only_pending else None
    report = EmbedReport(shard)
    total = ledger.count(pairs_table)
    bar = tqdm(total=total, desc=f"embedding (shard {shard})", unit=" pairs", disable=not progress)
    for n_pairs, texts in shard_texts(iter_pair_pages(ledger, page=PAGE), shard, keep):
        report.pairs += n_pairs
        report.texts += len(texts)
        report.embedded += fill_store(embedder, ledger.vector_store, texts, chunk=chunk)
        bar.update(n_pairs)
        bar.set_postfix(embedded=report.embedded)
    bar.close()
    return report


def missing_texts(ledger: Ledger, config: Config, *, only_pending: bool = False, model: str | None = None) -> int:
    """How many distinct texts of the workspace (or of its pending pairs) the store lacks."""
    store = ledger.vector_store
    model = model or SentenceEmbedder(config.embedding.model, max_length=config.embedding.max_length).name
    keep = pending_filter(ledger, config) if only_pending else None
    missing: set[str] = set()
    for _, texts in shard_texts(iter_pair_pages(ledger, page=PAGE), Shard(), keep):
        hashes = [text_hash(t) for t in texts]
        if is_array_store(store):
            missing.update(h for h, r in zip(hashes, store.rows_of(model, hashes)) if r < 0)
        else:
            missing.update(set(hashes) - set(store.load_vectors(model, hashes)))
    return len(missing)


def finish_ranks(ledger: Ledger, config: Config, *, only_pending: bool = False, env: dict | None = None) -> int | None:
    """Under a launcher (``torchrun``, ``accelerate launch``: ``MASTER_ADDR`` and ``WORLD_SIZE``
    > 1), wait for every rank (a gloo barrier), then rank 0 counts the texts still missing
    from the store (0 when the shards filled it); None elsewhere and on the other ranks."""
    env = os.environ if env is None else env
    if int(env.get("WORLD_SIZE", "1")) <= 1 or "MASTER_ADDR" not in env:
        return None
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        dist.barrier()
        return missing_texts(ledger, config, only_pending=only_pending) if dist.get_rank() == 0 else None
    finally:
        dist.destroy_process_group()


def rank_device(env: dict | None = None) -> str | None:
    """``cuda:LOCAL_RANK`` under a launcher when GPUs are present, else None (the embedder's default)."""
    env = os.environ if env is None else env
    if "LOCAL_RANK" not in env:
        return None
    import torch

    return f"cuda:{int(env['LOCAL_RANK']) % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"


__all__ = ["EmbedReport", "PAGE", "Shard", "embed_workspace", "finish_ranks", "missing_texts", "pending_filter",
           "rank_device", "shard_of", "shard_texts"]

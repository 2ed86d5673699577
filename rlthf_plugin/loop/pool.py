"""The pool an iteration selects from, and the training set every strategy trains on.

:func:`read_pool` reads the workspace's pairs, their audited AI labels (the primary
judge's, or a fallback judge's where the primary did not vote), the counted human labels
and the ground truth as aligned arrays (:class:`Pool`). The training set of an iteration
(:func:`training_set`): every pair with a human label (weighted by the amplification alpha
of the iteration that asked it) plus, from the previous iteration's decisions, the kept AI
labels and the flipped ones; the first iteration trains on every AI label.

Human labels from the ``selection.ground_truth`` platforms (by default the imported ones)
are ground truth only: the oracle answers from them and evaluates against them; they are
never training labels.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..batching import batched
from ..config import Config, ground_truth_platforms
from ..errors import ConfigError, require
from ..models.embedder import SentenceEmbedder
from ..models.reward import EmbeddingRewardModel, RewardModel
from ..models.vectors import StoredTextTable, TextRows, VectorStore
from ..pairs import A, B, PreferencePair, majority
from ..selection.rlthf import Action, schedule
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.pair_ids import PairIds, PairIndex, positions_of
from ..store.votes import VoteTable, audited_arrays, read_votes
from .cascade import settler_names
from .pair_columns import LedgerPairs, PairColumns, read_columns

#: The platform name of the simulated annotator's labels (:mod:`rlthf_plugin.loop.oracle`).
ORACLE_PLATFORM = "oracle"
#: Decisions read at a time by :func:`previous_actions`.
ACTION_PAGE = 50_000


def training_labels(ai: np.ndarray, human: np.ndarray, prev_action: np.ndarray | None) -> np.ndarray:
    """The label each pair trains on in this iteration ("" = not in the training set).

    ``ai`` and ``human`` are (N,) arrays of labels ("" where none); ``ai`` is the audited AI
    label (:attr:`Pool.ai`: the primary judge's, or a fallback judge's where the primary did
    not vote). ``prev_action`` is the previous iteration's action per pair ("" where none)
    or None in the first iteration.
    """
    out = np.full(ai.shape, "", dtype=object)
    winner_ai = np.isin(ai, [A, B])
    if prev_action is None:
        out[winner_ai] = ai[winner_ai]
    else:
        keep = winner_ai & (prev_action == Action.KEEP)
        flip = winner_ai & (prev_action == Action.FLIP)
        out[keep] = ai[keep]
        out[flip] = np.where(ai[flip] == A, B, A)
    has_human = np.isin(human, [A, B])
    out[has_human] = human[has_human]
    return out.astype(str)


def training_set(ai: np.ndarray, human: np.ndarray, human_weight: np.ndarray,
                 prev_action: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) str, weights (N,) float) of one iteration's training set.

    ``labels`` as :func:`training_labels` ("" = not trained on); ``weights`` is the
    amplification ``human_weight`` on pairs with a human winner, 1 elsewhere.
    """
    labels = training_labels(ai, human, prev_action)
    return labels, np.where(np.isin(human, [A, B]), human_weight, 1.0)


@dataclass
class Pool:
    """Everything an iteration reads from the ledger, as aligned arrays."""

    pairs: Sequence[PreferencePair]  # a list, or LedgerPairs (read when asked) with ``columns``
    ai: np.ndarray             # (N,) the audited AI label ("" when none; may be tie_inconsistent)
    human: np.ndarray          # (N,) counted human majority label ("" when none)
    human_any: np.ndarray      # (N,) bool: any counted human answer (also tie / skip)
    human_iteration: np.ndarray  # (N,) iteration that asked it (-1 when none)
    truth: np.ndarray          # (N,) ground-truth majority label ("" when none)
    index: Mapping[str, int] = field(default_factory=dict)  # pair id -> position (a PairIndex from read_pool)
    primary_judge: str = ""    # whose label ``ai`` is where it voted
    label_judge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))  # (N,) str: whose ``ai`` it is
    votes: VoteTable | None = None  # every AI vote of ``pairs``, in their order
    #: The pairs as columns (a select over the vector store): then ``pairs`` reads from the ledger.
    columns: PairColumns | None = None

    # What the strategies read: columns when there are, else from the pairs.
    @property
    def ids(self) -> Sequence[str]:
        if self.columns is not None:
            return self.columns.ids
        if isinstance(self.index, PairIndex):
            return self.index.ids
        return [p.id for p in self.pairs]

    def texts(self) -> tuple[Sequence[str] | TextRows, Sequence[str] | TextRows, Sequence[str] | TextRows]:
        """(prompts, responses A, responses B): text rows of the vector store, or the texts."""
        if self.columns is not None:
            return self.columns.prompt, self.columns.response_a, self.columns.response_b
        return [p.prompt for p in self.pairs], [p.response_a for p in self.pairs], [p.response_b for p in self.pairs]

    def text_ids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) int ids of the prompt, response A and response B: equal texts, equal ids."""
        if self.columns is not None:
            return self.columns.prompt.rows, self.columns.response_a.rows, self.columns.response_b.rows
        prompts, a, b = self.texts()
        responses: dict[str, int] = {}
        ab = np.fromiter((responses.setdefault(t, len(responses)) for t in [*a, *b]), dtype=np.int64)
        by_prompt: dict[str, int] = {}
        return (np.fromiter((by_prompt.setdefault(t, len(by_prompt)) for t in prompts), dtype=np.int64),
                ab[:len(a)], ab[len(a):])

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) characters of response A and of response B."""
        if self.columns is not None:
            return self.columns.length_a, self.columns.length_b
        return (np.array([len(p.response_a) for p in self.pairs]), np.array([len(p.response_b) for p in self.pairs]))

    def similarity(self) -> np.ndarray:
        """(N,) float: a REAL candidate pair's similarity, NaN for the other pairs."""
        if self.columns is not None:
            return self.columns.similarity
        return np.array([_similarity(p.metadata) for p in self.pairs], dtype=np.float64)

    def pairs_at(self, positions: Sequence[int]) -> Sequence[PreferencePair]:
        """The pairs at ``positions`` (read from the ledger when iterated, for columns)."""
        if isinstance(self.pairs, LedgerPairs):
            return LedgerPairs(self.pairs.ledger, [self.pairs.ids[int(i)] for i in positions])
        return [self.pairs[int(i)] for i in positions]

    def release_rows(self, *, votes: bool = True) -> None:
        """Drop the text rows and (``votes``) the vote tensors: a select's decision phase reads
        ids and labels only; :meth:`texts` and :meth:`similarity` read the pairs from the ledger after."""
        self.columns = None
        if votes:
            self.votes = None


def _similarity(meta: dict | None) -> float:
    meta = meta or {}
    sim = meta.get("similarity")
    return float(sim) if meta.get("origin") == "candidates" and isinstance(sim, (int, float)) else np.nan


def stored_table(factory: Callable[[], RewardModel] | None) -> StoredTextTable | None:
    """The vector-store table of a factory's reward models (``make_factory``'s embedding
    model on a workspace), or None: then the pool keeps texts."""
    table = getattr(getattr(factory, "__self__", None), "table", None)
    return table if isinstance(table, StoredTextTable) else None


def read_pool(ledger: Ledger, config: Config, *, table: StoredTextTable | None = None,
              texts: bool = True) -> Pool:
    """The pool as aligned arrays; with ``table``, the pairs as columns of text rows in it
    (:mod:`.pair_columns`: no pair object nor text kept per pair); with ``texts=False``, no
    text at all (the pairs are read from the ledger when asked: the quality estimate needs
    only ids and labels)."""
    columns = read_columns(ledger, table) if table is not None else None
    if table is not None:
        table.forget_index()  # the pool holds its rows: the store's text-id index can go (54 B a pair)
    pairs: Sequence[PreferencePair]
    if columns is not None:
        ids = columns.ids
        pairs = LedgerPairs(ledger, ids)
    elif not texts:
        ids = PairIds(ledger.pair_ids())
        pairs = LedgerPairs(ledger, ids)
    else:
        pairs = ledger.get_pairs()
        ids = PairIds(p.id for p in pairs)
    index = PairIndex(ids)
    n = len(pairs)
    # The audited AI label is the primary judge's, or a fallback judge's where the primary did
    # not vote (the other judges are signals, never the label).
    ai_votes = read_votes(ledger, ids)  # read once: select_signals takes them from the pool
    labels, judge_of, primary = audited_arrays(ledger, ai_votes, config.selection.primary_judge,
                                               settler_names(config), ties_only=config.escalation.settle == "ties")
    has = labels != ""
    ai = _compact(np.where(has, labels, ""))
    # the judges' names shared by reference (8 bytes a pair, not a copy of the name)
    judge = np.array([*ai_votes.judges, ""], dtype=object)[np.where(has, judge_of, -1)]
    truth_platforms = ground_truth_platforms(config)
    counted: dict[str, list[str]] = defaultdict(list)
    truth_votes: dict[str, list[str]] = defaultdict(list)
    asked_in: dict[str, int] = {}
    for r in label_rows(ledger):
        if r.platform in truth_platforms:
            truth_votes[r.pair_id].append(r.label)
        else:
            counted[r.pair_id].append(r.label)
            if r.iteration is not None:
                asked_in[r.pair_id] = r.iteration
    human = np.full(n, "", dtype=object)
    human_any = np.zeros(n, dtype=bool)
    human_iteration = np.full(n, -1, dtype=np.int32)
    truth = np.full(n, "", dtype=object)
    for (pid, votes), i in zip(counted.items(), index.positions(list(counted))):
        if i < 0:
            continue
        human_any[i] = True
        human[i] = majority(votes).label or ""
        human_iteration[i] = asked_in.get(pid, -1)
    for votes, i in zip(truth_votes.values(), index.positions(list(truth_votes))):
        if i >= 0:
            truth[i] = majority(votes).label or ""
    return Pool(pairs, ai, _compact(human), human_any, human_iteration, _compact(truth), index,
                primary, judge, ai_votes, columns)


def _compact(values: np.ndarray) -> np.ndarray:
    """(N,) str array as wide as its longest value (a label per pair: 4 bytes, not 64)."""
    width = max(1, int(np.char.str_len(values.astype(str)).max())) if len(values) else 1
    return values.astype(f"U{width}")


def label_judge_counts(pool: Pool, judges: Sequence[str] | None = None) -> dict[str, int]:
    """judge -> pool pairs (AI winner A or B) audited under its label, most first; ``judges``:
    the names that can occur (default: the pool's votes' judges, else found by sorting)."""
    winner = np.isin(pool.ai, [A, B])
    if judges is None and pool.votes is not None:
        judges = pool.votes.judges
    if judges is None:
        names = [str(j) for j in np.unique(pool.label_judge[winner])]
    else:  # the few judges of the votes: a mask each, no sorted copy of N names
        names = [*judges, ""]
    counts = {j: int(np.count_nonzero(winner & (pool.label_judge == j))) for j in names}
    return dict(sorted(((j, c) for j, c in counts.items() if c), key=lambda jc: (-jc[1], jc[0])))


def in_shard(pair_ids: Sequence[str], shard: float, seed: int) -> np.ndarray:
    """(N,) bool: a stable random ``shard`` fraction of the pairs (by hashing their ids)."""
    if not 0 < shard <= 1:
        raise ConfigError(f"selection.shard must be in (0, 1], got {shard}")
    if shard == 1:
        return np.ones(len(pair_ids), dtype=bool)
    def u(pid: str) -> float:
        return int(hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()[:12], 16) / 16 ** 12

    return np.array([u(p) < shard for p in pair_ids], dtype=bool)


def make_factory(ledger: Ledger | VectorStore, config: Config, *, progress: bool = False) -> Callable[[], RewardModel]:
    """A callable returning untrained reward models of the configured kind; ``ledger`` is a
    ledger (its vector store is used) or a vector store itself (the ML backend's read-only view)."""
    sel = config.selection
    if sel.reward_model == "embedding":
        emb = config.embedding
        base = EmbeddingRewardModel(SentenceEmbedder(emb.model, batch_size=emb.batch_size, max_length=emb.max_length,
                                                        backend=emb.backend),
                                    ledger=getattr(ledger, "vector_store", ledger), head=sel.head, seed=sel.seed, progress=progress)
        return base.spawn
    if sel.reward_model == "transformer":
        module = require("rlthf_plugin.models.reward_trl", "train")
        return lambda: module.TransformerRewardModel()
    raise ConfigError(f"unknown selection.reward_model '{sel.reward_model}'; known: embedding, transformer")


def previous_actions(ledger: Ledger, pool: Pool, iteration: int | None) -> np.ndarray | None:
    """(N,) str: each pair's action in ``iteration`` ("" where none); None when ``iteration`` is None."""
    if iteration is None:
        return None
    out = np.zeros(len(pool.ai), dtype="U1")  # "" everywhere; as wide as the longest action read
    for page in batched(iterations_db.decision_actions(ledger, iteration), ACTION_PAGE):  # two columns
        at = positions_of(pool.index, [pid for pid, _ in page])
        found = at >= 0
        actions = np.array([a for _, a in page], dtype=str)
        if actions.dtype.itemsize > out.dtype.itemsize:
            out = out.astype(actions.dtype)
        out[at[found]] = actions[found]
    return out


def human_weights(pool: Pool, rows: list[dict], config: Config, alpha: float) -> np.ndarray:
    """(N,) amplification of each pair's human label: that of the iteration that asked it
    (``rows``: the iterations so far), ``alpha`` for labels no iteration asked."""
    out = np.full(len(pool.human_iteration), float(alpha))
    for it, a in amplification_of(rows, config).items():  # a few iterations: a mask each, no float per pair
        out[pool.human_iteration == it] = a
    return out


def training_set_after(ledger: Ledger, config: Config,
                       iteration: int | None) -> tuple[Pool, np.ndarray, np.ndarray]:
    """``(pool, labels (N,) str, weights (N,) float)``: the training set the iteration after
    ``iteration`` starts from (None: the first iteration's, every AI label), as
    :func:`training_set` over :func:`read_pool`; the human labels weighted by the
    amplification of the iterations up to ``iteration`` that asked them."""
    pool = read_pool(ledger, config)
    sel = config.selection
    rows = [r for r in iterations_db.iteration_rows(ledger) if iteration is not None and r["id"] <= iteration]
    alpha = schedule(0 if iteration is None else iteration + 1, amplification=sel.amplification,
                     back_off=sel.back_off)[0]
    labels, weights = training_set(pool.ai, pool.human, human_weights(pool, rows, config, alpha),
                                   previous_actions(ledger, pool, iteration))
    return pool, labels, weights


def amplification_of(rows: list[dict], config: Config) -> dict[int, float]:
    """iteration id -> the amplification alpha it ran with (the schedule's for older rows)."""
    sel = config.selection
    out = {}
    for r in rows:
        params = r["params"] or {}
        out[r["id"]] = float(params.get("amplification", schedule(r["id"], amplification=sel.amplification,
                                                                     back_off=sel.back_off)[0]))
    return out


__all__ = ["ORACLE_PLATFORM", "Pool", "amplification_of", "human_weights", "in_shard", "label_judge_counts",
           "make_factory", "previous_actions", "read_pool", "stored_table", "training_labels", "training_set",
           "training_set_after"]

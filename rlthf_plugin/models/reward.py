"""Reward models behind one small interface: fit on labeled pairs, score pairs -> margins.

A reward model r(prompt, response) -> float is trained with the Bradley-Terry loss
``-log sigmoid(r(chosen) - r(rejected))``. RLTHF only needs margins
``r(response_a) - r(response_b)`` of pairs; the selection core takes them as arrays.

Implementations: ``EmbeddingRewardModel`` (a Bradley-Terry head on frozen sentence
embeddings, this module) and ``TransformerRewardModel`` (TRL's RewardTrainer on a
sequence-classification backbone, :mod:`rlthf_plugin.models.reward_trl`).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .embedder import SentenceEmbedder, torch_device
from .vectors import TextTable


@runtime_checkable
class RewardModel(Protocol):
    """Fit on (prompt, chosen, rejected) triples; score (prompt, response) pairs."""

    def fit(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
            weights: Sequence[float] | None = None) -> "RewardModel":
        """Train on preference triples; ``weights`` (N,) repeat/amplify pairs (alpha)."""
        ...

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Rewards, shape (N,) float."""
        ...

    def margins(self, prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        """``r(a) - r(b)`` per pair, shape (N,) float."""
        ...


#: Pairs per training / scoring batch of the embedding head.
BATCH_SIZE = 4096
#: Training sets whose features take at most this many bytes are featurised once.
PRECOMPUTE_BYTES = 1 << 30
HEADS = ("linear", "mlp")
#: The Newton solver sums its (d, d) Gram matrix over at most this many pairs: a uniform
#: sample of the weight-1 (AI-labeled) pairs, reweighted by 1 / rate, plus every other pair
#: (the amplified human labels). 769 weights are pinned down long before 200k pairs, and the
#: Gram pass is the one step of a fit whose cost grows as N d^2.
MAX_GRAM_PAIRS = 200_000
#: Batches between releases of a memory-mapped vector store's pages (bounded RSS at 1M pairs).
RELEASE_BATCHES = 1
#: How the linear head is fit: ``newton`` (Newton steps of the Bradley-Terry loss in numpy,
#: the first one in closed form) or ``adamw`` (minibatch AdamW in torch, as the MLP head).
SOLVERS = ("newton", "adamw")


class EmbeddingRewardModel:
    """A Bradley-Terry reward head on frozen sentence embeddings; fast on CPU.

    ``r(prompt, response) = head(phi)`` with ``phi = [e_r, e_p * e_r, log(1 + len(r))]``:
    the response embedding, its elementwise product with the prompt embedding (how well it
    fits this prompt) and its length in characters. The head is linear (default) or a
    one-hidden-layer MLP, trained with the weighted Bradley-Terry loss
    ``w * -log sigmoid(r(chosen) - r(rejected))``; features are standardised on the
    training pairs.

    The linear head is a logistic regression on ``x = phi(chosen) - phi(rejected)`` with an
    L2 penalty ``l2 * sum(w)``. By default it takes Newton steps from ``beta = 0``: the first
    one is closed form, ``beta = 2 (G + 4 lambda I)^-1 g`` with ``G = sum w x x^T`` and
    ``g = sum w x``, so a fit is one pass over the pairs and a (d, d) solve, with no torch.
    Reward-model margins here are weak (p stays near 1/2, where the loss is nearly
    quadratic), so more steps barely move the ranking: on the dev sets the one-step head
    ranks the AI errors at least as well as 60 epochs of AdamW (``docs/benchmarks.md``).
    :meth:`fit_folds` fits all cross-fitting folds from one pass (fold ``k``'s model uses
    ``G - G_k``). The MLP head (and ``solver="adamw"``) trains by AdamW in batches of
    :data:`BATCH_SIZE` pairs.

    Parameters
    ----------
    embedder : Embedder or None, default None
        Anything with ``name`` and ``encode(texts)``; None = the packaged MiniLM
        (:class:`~rlthf_plugin.models.embedder.SentenceEmbedder`, every GPU present).
    ledger : VectorStore or None, default None
        When given (e.g. the workspace's :class:`~rlthf_plugin.store.ledger.Ledger`), embeddings
        go through its cache (no text embedded twice).
    head : {"linear", "mlp"}, default "linear"
    hidden : int, default 128
        Width of the MLP head.
    solver : {"newton", "adamw"}, default "newton"
        How the linear head is fit (the MLP head always uses AdamW).
    newton_steps : int, default 1
    l2 : float, default 0.1
        Ridge penalty of the Newton solver per unit of training weight (features standardised).
    epochs : int, default 60
    lr : float, default 0.01
    weight_decay : float, default 0.1
        AdamW decoupled weight decay (the only regulariser of the linear head).
    device : str or None, default None
        Where the head trains; None = ``cuda`` when present.
    seed : int, default 0
    """

    def __init__(self, embedder: Any = None, *, ledger: Any = None, head: str = "linear", hidden: int = 128,
                 solver: str = "newton", newton_steps: int = 1, l2: float = 0.1,
                 epochs: int = 60, lr: float = 0.01, weight_decay: float = 0.1, device: str | None = None,
                 seed: int = 0, progress: bool = False, table: TextTable | None = None):
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")
        if newton_steps < 1 or l2 <= 0:
            raise ValueError(f"newton_steps must be >= 1 and l2 > 0, got {newton_steps} and {l2}")
        if table is None:
            table = TextTable.of(embedder or SentenceEmbedder(), ledger, progress=progress)
        self.table = table
        self.head, self.hidden, self.epochs, self.lr = head, hidden, epochs, lr
        self.solver, self.newton_steps, self.l2 = solver, newton_steps, l2
        self.weight_decay, self.device, self.seed, self.progress = weight_decay, device, seed, progress
        self._net = None
        self._beta: np.ndarray | None = None
        self._scale: np.ndarray | None = None

    @property
    def _newton(self) -> bool:
        return self.head == "linear" and self.solver == "newton"

    def spawn(self, **changes: Any) -> "EmbeddingRewardModel":
        """An untrained model with the same settings (or ``changes``) sharing the text table."""
        kwargs = dict(head=self.head, hidden=self.hidden, solver=self.solver, newton_steps=self.newton_steps,
                      l2=self.l2, epochs=self.epochs, lr=self.lr,
                      weight_decay=self.weight_decay, device=self.device, seed=self.seed, progress=self.progress)
        kwargs.update(changes)
        return EmbeddingRewardModel(table=self.table, **kwargs)

    # -- features ---------------------------------------------------------------------------
    def _phi(self, p_rows: np.ndarray, r_rows: np.ndarray) -> np.ndarray:
        er = self.table.gather(r_rows)
        return np.concatenate([er, er * self.table.gather(p_rows), self.table.lengths[r_rows, None]], axis=1)

    def _tensor(self, x: np.ndarray):
        import torch

        if self._scale is not None:
            x = x / self._scale
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self._device)

    def _release(self, start: int) -> None:
        """Every :data:`RELEASE_BATCHES` batches, drop the vectors read from resident memory
        (a memory-mapped store's pages; the page cache keeps them)."""
        if start and start % (RELEASE_BATCHES * BATCH_SIZE) == 0:
            self.table.release()

    # -- training -------------------------------------------------------------------------
    def _triples(self, prompts, chosen, rejected, weights):
        n = len(prompts)
        if not (len(chosen) == len(rejected) == n):
            raise ValueError(f"prompts ({n}), chosen ({len(chosen)}) and rejected ({len(rejected)}) differ in length")
        if n == 0:
            raise ValueError("no pairs to fit on")
        w = np.ones(n, dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        if w.shape != (n,) or (w < 0).any():
            raise ValueError(f"weights must be (N,) = ({n},) and >= 0, got shape {w.shape}")
        return self.table.index(prompts), self.table.index(chosen), self.table.index(rejected), w

    def _fit_scale(self, p: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Per-feature RMS of ``phi(chosen) - phi(rejected)`` on up to 20k training pairs, (d,).

        The RMS does not change when a pair's label flips (the difference only changes
        sign), so the scale carries nothing of the labels: the folds of :meth:`fit_folds`
        can share it without one fold learning from another's labels.
        """
        rng = np.random.default_rng(self.seed)
        sample = rng.choice(len(p), size=min(len(p), 20000), replace=False)
        sample = np.sort(sample)
        squares = 0.0
        for start in range(0, sample.size, BATCH_SIZE):  # bounded memory: the rows are spread over the store
            sl = sample[start:start + BATCH_SIZE]
            diff = self._phi(p[sl], c[sl]) - self._phi(p[sl], r[sl])
            squares = squares + (diff.astype(np.float64) ** 2).sum(axis=0)
            self.table.release()
        return np.maximum(np.sqrt(squares / sample.size), 1e-6).astype(np.float32)

    def _diffs(self, p, c, r, w):
        """Batches ``(rows, x, w)`` of standardised ``phi(chosen) - phi(rejected)``, bounded memory."""
        for start in range(0, len(p), BATCH_SIZE):
            sl = slice(start, start + BATCH_SIZE)
            yield sl, (self._phi(p[sl], c[sl]) - self._phi(p[sl], r[sl])) / self._scale, w[sl]
            self._release(start)

    def fit(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
            weights: Sequence[float] | None = None) -> "EmbeddingRewardModel":
        p, c, r, w = self._triples(prompts, chosen, rejected, weights)
        if self._newton:
            return self._fit_newton(p, c, r, w)
        return self._fit_adamw(p, c, r, w)

    def fit_folds(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
                  fold_of: np.ndarray, weights: Sequence[float] | None = None) -> list["EmbeddingRewardModel"] | None:
        """One model per fold, model ``k`` fit on the pairs with ``fold_of != k``.

        ``fold_of`` is (N,) int in ``[0, folds)``. With the one-step Newton solver all folds
        come from one pass: per-fold sums ``G_k, g_k``, and model ``k`` solves with
        ``G - G_k, g - g_k``. Returns None where that shortcut does not apply (the caller
        then fits each fold on its own).
        """
        if not (self._newton and self.newton_steps == 1):
            return None
        p, c, r, w = self._triples(prompts, chosen, rejected, weights)
        fold_of = np.asarray(fold_of)
        folds = int(fold_of.max()) + 1
        rows, w_rows = self._gram_rows(p, c, r, w)
        p, c, r, fold_of = p[rows], c[rows], r[rows], fold_of[rows]
        d = self._scale.size
        gram, grad = np.zeros((folds, d, d)), np.zeros((folds, d))
        for sl, x, wb in tqdm(self._diffs(p, c, r, w_rows), total=-(-len(p) // BATCH_SIZE), desc="reward model",
                              disable=not self.progress, leave=False):
            fb = fold_of[sl]
            for k in range(folds):
                m = fb == k
                xk, wk = x[m], wb[m]
                gram[k] += (xk * wk[:, None]).T @ xk
                grad[k] += wk @ xk
        total_gram, total_grad = gram.sum(0), grad.sum(0)
        out = []
        for k in range(folds):
            model = self.spawn()
            model._scale = self._scale
            weight = float(w_rows[fold_of != k].sum())
            model._beta = _newton_from_zero(total_gram - gram[k], total_grad - grad[k], self.l2 * weight)
            out.append(model)
        return out

    def _gram_rows(self, p, c, r, w) -> tuple[np.ndarray, np.ndarray]:
        """Sets the feature scale; the rows the Gram sums run over and their weights (mean 1)."""
        self._scale = self._fit_scale(p, c, r)
        rows, w_rows = _gram_sample(w, MAX_GRAM_PAIRS, self.seed)
        return rows, w_rows / max(float(w_rows.mean()), 1e-12)

    def _fit_newton(self, p, c, r, w) -> "EmbeddingRewardModel":
        rows, w = self._gram_rows(p, c, r, w)
        p, c, r = p[rows], c[rows], r[rows]
        lam = self.l2 * float(w.sum())
        d = self._scale.size
        beta = np.zeros(d)
        for _ in range(self.newton_steps):
            # Hessian sum w p(1-p) x x^T and gradient sum w (1-p) x of the BT log-likelihood at beta.
            hess, grad = np.zeros((d, d)), np.zeros(d)
            for _, x, wb in self._diffs(p, c, r, w):
                prob = 1.0 / (1.0 + np.exp(-(x @ beta)))
                hw, gw = wb * prob * (1 - prob), wb * (1 - prob)
                hess += (x * hw[:, None].astype(np.float32)).T @ x
                grad += gw @ x
            beta = beta + np.linalg.solve(hess + lam * np.eye(d), grad - lam * beta)
        self._beta = beta
        return self

    def _fit_adamw(self, p, c, r, w) -> "EmbeddingRewardModel":
        import torch

        n = len(p)

        self._device = torch_device(self.device)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self._scale = self._fit_scale(p, c, r)
        dim = self._scale.size
        if self.head == "linear":
            net = torch.nn.Linear(dim, 1, bias=False)
        else:
            net = torch.nn.Sequential(torch.nn.Linear(dim, self.hidden), torch.nn.GELU(), torch.nn.Dropout(0.1),
                                      torch.nn.Linear(self.hidden, 1))
        net = net.to(self._device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        w = w / max(float(w.mean()), 1e-12)
        steps = self.epochs * -(-n // BATCH_SIZE)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=max(steps, 1), pct_start=0.1)
        net.train()
        # Small training sets are featurised once; large ones batch by batch (bounded memory).
        whole = n * dim * 4 * 2 <= PRECOMPUTE_BYTES
        if whole:
            all_c, all_r = self._tensor(self._phi(p, c)), self._tensor(self._phi(p, r))
        all_w = torch.from_numpy(w).to(self._device)
        for _ in range(self.epochs):
            perm = rng.permutation(n)
            for start in range(0, n, BATCH_SIZE):
                b = perm[start:start + BATCH_SIZE]
                if whole:
                    tb = torch.from_numpy(b).to(self._device)
                    xc, xr = all_c[tb], all_r[tb]
                else:
                    xc = self._tensor(self._phi(p[b], c[b]))
                    xr = self._tensor(self._phi(p[b], r[b]))
                wb = all_w[b]
                loss = (wb * torch.nn.functional.softplus(-(net(xc) - net(xr)).squeeze(-1))).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        self._net = net
        return self

    # -- scoring --------------------------------------------------------------------------
    def _rewards(self, p_rows: np.ndarray, r_rows: np.ndarray) -> np.ndarray:
        if self._beta is not None:
            out = np.empty(len(r_rows), dtype=np.float64)
            for start in range(0, len(r_rows), BATCH_SIZE):
                sl = slice(start, start + BATCH_SIZE)
                out[sl] = (self._phi(p_rows[sl], r_rows[sl]) / self._scale) @ self._beta
                self._release(start)
            return out
        import torch

        if self._net is None:
            raise RuntimeError("the reward model is not trained: call fit() first")
        out = np.empty(len(r_rows), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(r_rows), BATCH_SIZE):
                sl = slice(start, start + BATCH_SIZE)
                out[sl] = self._net(self._tensor(self._phi(p_rows[sl], r_rows[sl]))).squeeze(-1).cpu().numpy()
        return out

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts ({len(prompts)}) and responses ({len(responses)}) differ in length")
        return self._rewards(self.table.index(prompts), self.table.index(responses))

    def margins(self, prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        if not (len(prompts) == len(response_a) == len(response_b)):
            raise ValueError(f"prompts ({len(prompts)}), response_a ({len(response_a)}) and response_b "
                             f"({len(response_b)}) differ in length")
        p = self.table.index(prompts)
        return self._rewards(p, self.table.index(response_a)) - self._rewards(p, self.table.index(response_b))


def _gram_sample(w: np.ndarray, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (M,) and their weights (M,) for the Gram sums: all rows when N <= cap, else every
    row whose weight is not 1 plus a seeded uniform sample of the rest, weighted by 1 / rate
    (so the sums stay unbiased)."""
    n = w.size
    if n <= cap:
        return np.arange(n), w
    special = np.flatnonzero(w != 1.0)
    plain = np.flatnonzero(w == 1.0)
    take = max(cap - special.size, 1)
    if take >= plain.size:
        return np.arange(n), w
    chosen = np.random.default_rng(seed).choice(plain, size=take, replace=False)
    rows = np.sort(np.concatenate([special, chosen]))
    return rows, np.where(w[rows] == 1.0, plain.size / take, w[rows]).astype(w.dtype)


def _newton_from_zero(gram: np.ndarray, grad: np.ndarray, lam: float) -> np.ndarray:
    """First Newton step of the L2-penalised BT loss from 0: at 0, p = 1/2, so the Hessian
    is ``gram / 4 + lam I`` and the gradient ``grad / 2`` (``gram = sum w x x^T``, ``grad = sum w x``)."""
    d = grad.size
    return np.linalg.solve(gram / 4 + lam * np.eye(d), grad / 2)

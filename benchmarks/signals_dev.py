"""Every signal against the AI label, simulated on the dev sets (issue 12).

Per dev set (PandaLM: gpt-3.5-turbo primary + PandaLM-7B; LLMBar Processed: five judge
protocols x two orders; MT-bench: GPT-4 alone) and seed, the loop is simulated with the
human labels as the oracle: iterations of ``--step`` (2%) of the pool, each one

1. trains the MiniLM reward model on the current labels (human where asked, the primary
   AI label elsewhere) and takes cross-fitted margins; the sibling margins (the other
   labels of the same prompt, leave-one-out) come from the same labels;
2. builds the signal table, the prior and the error model (fit on the labels so far);
3. decides flips / trust on calibrated evidence and asks the next batch (suspects by
   P(wrong) plus a uniform exploration share).

The pool of a dev set: pairs where the primary judge and the humans both name a winner.
Side by side, with the same seeds and reward model: ``random``; ``margin_curve`` (the
RLTHF loop, :func:`rlthf_plugin.loop.plan_iteration`) and the ablations of ``signals``.

    python -m benchmarks.signals_dev --seeds 3 --sets pandalm,llmbar,mtbench

Embeddings are cached in ``benchmarks/.cache/signals_embeddings.npz``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rlthf_plugin.config import Config
from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.trust import decide
from rlthf_plugin.selection.error_model import fit_error_model
from rlthf_plugin.selection.prior import prior_wrong
from rlthf_plugin.selection.siblings import sibling_margins
from rlthf_plugin.selection.signals import encode_votes, signal_table

#: The dev data: $RLTHF_DEV_DATA, else shared/data/dev beside the checkout (a worktree sits one level deeper).
DEV = next((p for p in ([Path(os.environ["RLTHF_DEV_DATA"])] if os.environ.get("RLTHF_DEV_DATA") else []) +
            [Path(__file__).resolve().parents[k] / "shared" / "data" / "dev" for k in (2, 3)] if p.exists()),
           Path(__file__).resolve().parents[2] / "shared" / "data" / "dev")
CACHE = Path(__file__).resolve().parent / ".cache" / "signals_embeddings.npz"


@dataclass
class DevSet:
    """Pairs with votes (judge, order, label) and the human majority label."""

    name: str
    primary: str
    prompts: list[str] = field(default_factory=list)
    a: list[str] = field(default_factory=list)
    b: list[str] = field(default_factory=list)
    human: list[str] = field(default_factory=list)
    votes: list[list[tuple[str, str, str]]] = field(default_factory=list)

    def add(self, prompt, a, b, human, votes):
        if not isinstance(a, str) or not isinstance(b, str) or not a or not b or a == b:
            return
        self.prompts.append(prompt)
        self.a.append(a)
        self.b.append(b)
        self.human.append(human)
        self.votes.append(votes)


def _rows(name):
    with gzip.open(DEV / name, "rt") as f:
        return [json.loads(line) for line in f]


def load_pandalm() -> DevSet:
    judge7b = {int(r["idx"]): {0: "tie", 1: "A", 2: "B"}[int(r["pandalm_result"])]
               for r in json.loads((DEV / "pandalm-7b-testset-v1.json").read_text())}
    ds = DevSet("pandalm", "gpt-3.5-turbo")
    for r in _rows("human_vs_ai_pairs.jsonl.gz"):
        if not r["source"].startswith("PandaLM"):
            continue
        idx = int(r["id"].split("-")[1])
        votes = [("gpt-3.5-turbo", "", r["ai_label"])]
        if idx in judge7b:
            votes.append(("PandaLM-7B", "", judge7b[idx]))
        ds.add(r["prompt"], r["response_a"], r["response_b"], r["human_label"], votes)
    return ds


def load_llmbar() -> DevSet:
    ds = DevSet("llmbar", "GPT-4/Vanilla_NoRules")
    for r in _rows("llmbar_processed_with_llm_judges.jsonl.gz"):
        votes = []
        for judge, orders in r["judges"].items():
            for key, order in (("order_1_2", "ab"), ("order_2_1", "ba")):
                v = orders.get(key)
                if str(v) in ("1", "2"):
                    votes.append((judge, order, "A" if str(v) == "1" else "B"))
        ds.add(r["input"], r["output_1"], r["output_2"], {"1": "A", "2": "B"}[str(r["gold_label"])], votes)
    return ds


def load_mtbench() -> DevSet:
    ds = DevSet("mtbench", "gpt-4")
    for r in _rows("human_vs_ai_pairs.jsonl.gz"):
        if r["source"].startswith("mt_bench"):
            ds.add(r["prompt"], r["response_a"], r["response_b"], r["human_label"], [("gpt-4", "", r["ai_label"])])
    return ds


LOADERS = {"pandalm": load_pandalm, "llmbar": load_llmbar, "mtbench": load_mtbench}


class Embeddings:
    """Text -> MiniLM vector, cached on disk by text hash."""

    def __init__(self, path: Path = CACHE):
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            z = np.load(path)
            self.vectors = dict(zip(z["keys"].tolist(), z["vectors"]))
        self._embedder = None

    def __call__(self, texts):
        keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            if self._embedder is None:
                from rlthf_plugin.models.embedder import SentenceEmbedder

                self._embedder = SentenceEmbedder()
            vec = self._embedder.encode([t for _, t in missing])
            for (k, _), v in zip(missing, vec):
                self.vectors[k] = np.asarray(v, dtype=np.float32)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, keys=np.array(list(self.vectors)), vectors=np.stack(list(self.vectors.values())))
        return np.stack([self.vectors[k] for k in keys])


@dataclass
class Pool:
    """A dev set restricted to the audited pool, with its vote tensor."""

    name: str
    prompts: list
    a: list
    b: list
    truth: np.ndarray      # (N,) A/B
    ai: np.ndarray         # (N,) primary label A/B
    votes: np.ndarray      # (N, J, 2)
    judges: list
    primary: int
    len_a: np.ndarray
    len_b: np.ndarray
    n_inconsistent: int
    group: np.ndarray = None   # (N,) prompt id
    a_id: np.ndarray = None    # (N,) response ids (equal text = equal id)
    b_id: np.ndarray = None


def make_pool(ds: DevSet) -> Pool:
    from rlthf_plugin.selection.signals import primary_labels

    judges = sorted({j for vs in ds.votes for j, _, _ in vs})
    jidx = {j: k for k, j in enumerate(judges)}
    pi, ji, od, lab = [], [], [], []
    for i, vs in enumerate(ds.votes):
        for j, o, label in vs:
            pi.append(i), ji.append(jidx[j]), od.append(o), lab.append(label)
    votes, _ = encode_votes(pi, ji, od, lab, n_pairs=len(ds.prompts), n_judges=len(judges))
    primary = jidx[ds.primary]
    label = primary_labels(votes, primary)
    human = np.asarray(ds.human)
    keep = np.flatnonzero(np.isin(label, ["A", "B"]) & np.isin(human, ["A", "B"]))
    n_inc = int(np.sum((label == "tie_inconsistent") & np.isin(human, ["A", "B"])))
    take = lambda xs: [xs[i] for i in keep]  # noqa: E731
    prompts, a, b = take(ds.prompts), take(ds.a), take(ds.b)
    q = {x: k for k, x in enumerate(dict.fromkeys(prompts))}
    t = {x: k for k, x in enumerate(dict.fromkeys(a + b))}
    return Pool(ds.name, prompts, a, b, human[keep], label[keep], votes[keep], judges,
                primary, np.array([len(x) for x in a]), np.array([len(x) for x in b]), n_inc,
                np.array([q[x] for x in prompts]), np.array([t[x] for x in a]), np.array([t[x] for x in b]))


class RM:
    """The MiniLM Bradley-Terry reward model of the project, on cached embeddings."""

    def __init__(self, emb: Embeddings, pool: Pool, folds: int = 5):
        from rlthf_plugin.models.reward import EmbeddingRewardModel
        from rlthf_plugin.models.vectors import TextTable

        table = TextTable(emb)
        table.index(sorted(set(pool.prompts) | set(pool.a) | set(pool.b)))
        self.base = EmbeddingRewardModel(table=table, head="linear")
        self.pool, self.folds = pool, folds
        self._memo: dict = {}

    def margins(self, labels: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
        """Cross-fitted r(A) - r(B) of every pool pair, trained on ``labels`` (memoised)."""
        key = (seed, hashlib.sha256(np.asarray(labels, dtype=str).tobytes() + np.asarray(weights).tobytes()).hexdigest())
        if key not in self._memo:
            self._memo[key] = self._fit(labels, weights, seed)
        return self._memo[key]

    def _fit(self, labels, weights, seed):
        from rlthf_plugin.loop.cross_fit import cross_fit_margins

        p = self.pool
        return cross_fit_margins(lambda: self.base.spawn(seed=seed), p.prompts, p.a, p.b, labels,
                                 train=np.isin(labels, ["A", "B"]), weights=weights, folds=self.folds, seed=seed)


def swap(x):
    return np.where(x == "A", "B", "A")


#: The product's defaults (``[selection]`` of rlthf.toml): the benchmark runs what users get.
DEFAULTS = Config().selection


@dataclass
class Variant:
    """One configuration of the signals strategy."""

    name: str
    prior: str = DEFAULTS.prior
    use_margin: bool = True
    use_votes: bool = True
    #: The sibling margin (the other labels of the same prompt, :mod:`rlthf_plugin.selection.siblings`).
    use_siblings: bool = True
    error_model: bool = True
    flips: bool = True
    explore: float = DEFAULTS.explore
    #: Retrain the RM on the human labels each iteration, as ``select`` does (False: one RM on
    #: the AI labels per seed).
    retrain: bool = True


VARIANTS = {
    "signals": Variant("signals"),
    "signals_no_flips": Variant("signals_no_flips", flips=False),
    "signals_frozen_rm": Variant("signals_frozen_rm", retrain=False),
    "prior_only": Variant("prior_only", error_model=False),
    "signals_no_siblings": Variant("signals_no_siblings", use_siblings=False),
    "margin_only": Variant("margin_only", use_votes=False),
    "votes_only": Variant("votes_only", use_margin=False),
    # The other unsupervised priors, without and with the error model.
    **{f"prior_{p}": Variant(f"prior_{p}", prior=p, error_model=False) for p in ("fixed", "dawid_skene", "crowdlab")},
    **{f"signals_{p}": Variant(f"signals_{p}", prior=p) for p in ("fixed", "dawid_skene", "crowdlab")},
}


def run_signals(pool: Pool, rm: RM, v: Variant, seed: int, budgets, step, opts) -> list[dict]:
    n = pool.truth.size
    human = np.full(n, "", dtype=object).astype(str)
    explored = np.zeros(n, bool)
    asked_at = np.zeros(n, dtype=np.int64)
    out = []
    t0 = time.perf_counter()
    margin = None
    for it in range(int(round(max(budgets) / step))):
        if v.use_margin and (margin is None or v.retrain):
            labels = np.where(human != "", human, pool.ai) if v.retrain else pool.ai
            # Each human label weighs the amplification alpha of the iteration that asked it, as in select.
            amp = np.asarray(DEFAULTS.amplification, dtype=float)[np.clip(asked_at, 0, len(DEFAULTS.amplification) - 1)]
            weights = np.where(human != "", opts.get("alpha", amp), 1.0) if v.retrain else np.ones(n)
            margin = rm.margins(labels, weights, seed + it if v.retrain else seed)
        votes = pool.votes if v.use_votes else pool.votes[:, [pool.primary], :]
        primary = pool.primary if v.use_votes else 0
        names = pool.judges if v.use_votes else [pool.judges[pool.primary]]
        sibling = None
        if v.use_siblings:
            current = np.where(human != "", human, pool.ai)
            amp = np.asarray(DEFAULTS.amplification, dtype=float)[np.clip(asked_at, 0, len(DEFAULTS.amplification) - 1)]
            sw = np.where(human != "", opts.get("sib_human_weight", amp), 1.0)
            sibling = sibling_margins(pool.group, pool.a_id, pool.b_id, np.where(current == "A", 1.0, -1.0),
                                      weights=sw, l2=opts.get("sib_l2", 1.0))
        table = signal_table(votes, primary, judge_names=names, rm_margin=margin if v.use_margin else None,
                             length_a=pool.len_a, length_b=pool.len_b, sibling_margin=sibling)
        prior = prior_wrong(table, votes, primary, rm_margin=margin if v.use_margin else None, method=v.prior)
        wrong = np.where(human != "", (human != pool.ai).astype(float), np.nan)
        if v.error_model:
            em = fit_error_model(table, prior, wrong, prior_strength=opts.get("strength", DEFAULTS.prior_strength),
                                 c=opts.get("c", 1.0), seed=seed)
            p = em.p_wrong
        else:
            p = np.where(np.isfinite(wrong), np.nan, prior)  # the prior is never refit: no cross-fit needed
            if np.isfinite(wrong).any():
                p[np.isfinite(wrong)] = prior[np.isfinite(wrong)]
        k = int(round(step * n))
        batch = allocate(p, budget=k, eligible=human == "",
                         shares={"suspect": 1 - v.explore, "real": 0.0, "explore": v.explore}, seed=seed + it)
        asked = batch.index
        human[asked] = pool.truth[asked]
        asked_at[asked] = it
        explored[batch.of("explore")] = True
        wrong = np.where(human != "", (human != pool.ai).astype(float), np.nan)
        flipped = np.zeros(0, dtype=np.int64)
        if v.flips:
            # Decide on this iteration's scores, calibrated on every label so far (the new
            # batch's labels included; their scores came before their labels).
            dec = decide(p, wrong, flip_min_precision=opts.get("flip_min_precision", DEFAULTS.flip_min_precision),
                         trust_max_error=opts.get("trust_max_error", DEFAULTS.trust_max_error),
                         min_evidence=DEFAULTS.min_evidence)
            flipped = np.flatnonzero(dec.decision == "flip")
        curated, has = curate(pool, flipped, human)
        budget = round((it + 1) * step, 4)
        if any(abs(budget - b) < 1e-9 for b in budgets):
            amp = np.asarray(DEFAULTS.amplification, dtype=float)[np.clip(asked_at, 0, len(DEFAULTS.amplification) - 1)]
            out.append(record(v.name, pool, seed, budget, curated, np.flatnonzero(has), flipped,
                              time.perf_counter() - t0, explored, weights=np.where(has, amp, 1.0)))
    return out


def curate(pool, flipped, human):
    """The curated labels: the primary's, flipped where flipped, the human's where asked."""
    cur = pool.ai.copy()
    cur[flipped] = swap(pool.ai[flipped])
    has = human != ""
    cur[has] = human[has]
    return cur, has


def record(method, pool, seed, budget, curated, asked, flipped, seconds, explored=None, weights=None):
    """One row of the tables; ``labels`` (the curated label per pair) and ``weights`` (the
    export's amplification per pair) are kept for :mod:`benchmarks.downstream`."""
    err = pool.ai != pool.truth
    susp = asked if explored is None else asked[~explored[asked]]
    return {"set": pool.name, "method": method, "seed": seed, "budget": budget, "asked": int(asked.size),
            "fixed_share": float((err & (curated == pool.truth)).sum() / max(err.sum(), 1)),
            "curated_accuracy": float((curated == pool.truth).mean()),
            "precision": float(err[asked].mean()) if asked.size else float("nan"),
            "suspect_precision": float(err[susp].mean()) if susp.size else float("nan"),
            "explore_precision": (float(err[asked[explored[asked]]].mean())
                                  if explored is not None and explored[asked].any() else float("nan")),
            "flips": int(flipped.size),
            "flip_precision": float(err[flipped].mean()) if flipped.size else float("nan"),
            "seconds": seconds, "labels": curated, "weights": weights}


def run_random(pool, seed, budgets):
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool.truth.size)
    out = []
    for b in budgets:
        asked = order[: int(round(b * pool.truth.size))]
        cur = pool.ai.copy()
        cur[asked] = pool.truth[asked]
        out.append(record("random", pool, seed, b, cur, asked, np.zeros(0, int), 0.0))
    return out


def run_oneshot(pool: Pool, rm: RM, seed, budgets) -> list[dict]:
    """``uncertainty`` (smallest |margin|) and ``confident_learning`` (cleanlab's
    ``find_label_issues`` by self-confidence, filled up by the lowest self-confidence) on
    the cross-fitted RM trained on the primary labels; one shot per budget."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    n = pool.truth.size
    t0 = time.perf_counter()
    raw = rm.margins(pool.ai, np.ones(n), seed)
    t_rm = time.perf_counter() - t0
    margin = np.where(pool.ai == "A", raw, -raw)
    p_a = 1 / (1 + np.exp(-raw))
    probs = np.stack([p_a, 1 - p_a], axis=1)
    labels01 = (pool.ai == "B").astype(int)
    issues = find_label_issues(labels01, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels01, probs, method="self_confidence")
    seen = set(issues.tolist())
    cl = np.concatenate([issues, [i for i in np.argsort(quality, kind="stable") if i not in seen]]).astype(int)
    out = []
    for method, order in (("uncertainty", np.argsort(np.abs(margin), kind="stable")), ("confident_learning", cl)):
        for b in budgets:
            asked = order[: int(round(b * n))]
            cur = pool.ai.copy()
            cur[asked] = pool.truth[asked]
            out.append(record(method, pool, seed, b, cur, asked, np.zeros(0, int), t_rm))
    return out


def run_margin_curve(pool: Pool, rm: RM, seed, budgets, step):
    from rlthf_plugin.loop.strategy_margin_curve import plan_iteration
    from rlthf_plugin.selection.rlthf import flip_gate, schedule

    n = pool.truth.size
    err = pool.ai != pool.truth
    human = np.full(n, "", dtype=object).astype(str)
    human_it = np.full(n, -1)
    prev = None
    flip_asked: list[int] = []
    out = []
    t0 = time.perf_counter()
    for it in range(int(round(max(budgets) / step))):
        alpha, beta = schedule(it)
        gate = flip_gate(int(err[flip_asked].sum()), len(flip_asked))
        alphas = np.array([schedule(max(h, 0))[0] for h in human_it])
        plan = plan_iteration(pool.prompts, pool.a, pool.b, pool.ai, human, alphas, prev,
                              factory=lambda: rm.base.spawn(seed=seed), budget=int(round(step * n)), back_off=beta,
                              candidates=human == "", gate=gate, folds=rm.folds, seed=seed + it)
        s, cand = plan.selection, plan.candidates
        asked_now = cand[s.action == "ask"]
        flip_asked += cand[(s.action == "ask") & (s.region == "flip")].tolist()
        human[asked_now] = pool.truth[asked_now]
        human_it[asked_now] = it
        prev = np.full(n, "", dtype=object)
        prev[cand] = s.action
        prev = prev.astype(str)
        flipped = cand[s.action == "flip"]
        cur, has = curate(pool, flipped, human)
        b = round((it + 1) * step, 4)
        if any(abs(b - x) < 1e-9 for x in budgets):
            amp = np.array([schedule(max(h, 0))[0] for h in human_it])
            out.append(record("margin_curve", pool, seed, b, cur, np.flatnonzero(has), flipped,
                              time.perf_counter() - t0, weights=np.where(has, amp, 1.0)))
    return out


def _ms(xs) -> str:
    x = np.array([v for v in xs if v == v], float)
    return "-" if not x.size else f"{x.mean():.3f}" + (f" ± {x.std():.3f}" if x.size > 1 else "")


def table_md(rows, budgets) -> str:
    """One table per dev set: every method at every budget, mean ± sd over seeds."""
    g = defaultdict(list)
    for r in rows:
        g[(r["set"], r["method"], r["budget"])].append(r)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for s in dict.fromkeys(r["set"] for r in rows):
        out += [f"### {s}", "",
                "| method | human budget | AI errors fixed | batch precision (suspects) | exploration precision | "
                "flips | flip precision | curated accuracy | seconds |",
                "|---|---|---|---|---|---|---|---|---|"]
        for b in budgets:
            for m in methods:
                rs = g.get((s, m, b))
                if not rs:
                    continue
                out.append(f"| {m} | {b:.0%} | {_ms(r['fixed_share'] for r in rs)} | "
                           f"{_ms(r['suspect_precision'] for r in rs)} | {_ms(r['explore_precision'] for r in rs)} | "
                           f"{np.mean([r['flips'] for r in rs]):.1f} | {_ms(r['flip_precision'] for r in rs)} | "
                           f"{_ms(r['curated_accuracy'] for r in rs)} | {np.mean([r['seconds'] for r in rs]):.1f} |")
        out.append("")
    return "\n".join(out)


def markdown(rows, budgets, pools, command, wall) -> str:
    lines = [
        "## Every signal against the AI label, per dev set (issue 12)",
        "",
        f"Command: `{command}` ({wall / 60:.1f} min on this machine, 2 shared CPU cores).",
        "",
        "Per dev set the loop is simulated with the human labels as the oracle: iterations of 2% of the pool, "
        "budgets 2-10%, the same seeds and the same MiniLM reward model (linear head fit by one Newton step of "
        "the Bradley-Terry loss, 5-fold cross-fitted margins) for every method. The pool: pairs where the primary "
        "judge and the humans both name a winner; the primary judge's pairs that are `tie_inconsistent` are left "
        "out of the pool (they have no label to fix).",
        "",
        "| set | primary judge | other judges (votes) | pool | AI errors | primary tie_inconsistent |",
        "|---|---|---|---|---|---|",
    ]
    for p in pools:
        others = ", ".join(j for k, j in enumerate(p.judges) if k != p.primary) or "none"
        lines.append(f"| {p.name} | {p.judges[p.primary]} | {others} | {p.truth.size} | "
                     f"{int((p.ai != p.truth).sum())} | {p.n_inconsistent} |")
    lines += [
        "",
        "Methods: `random`; `uncertainty` (smallest |margin|) and `confident_learning` (cleanlab "
        "`find_label_issues`), one shot; `margin_curve`: the RLTHF loop of `selection.strategy = margin-curve` "
        "(`plan_iteration`, paper schedule, gated flips); `signals`: `selection.strategy = signals` as `select` "
        f"runs it by default (prior `{DEFAULTS.prior}`, error model, calibrated flips, {DEFAULTS.explore:.0%} "
        "exploration, the RM retrained each iteration on the human labels with the paper's amplification). "
        "The signals include the sibling margin (`rlthf_plugin/selection/siblings.py`: a leave-one-out "
        "Bradley-Terry fit over the other labels of the same prompt, human labels weighted like the RM's). "
        "Ablations: `signals_no_flips`; `signals_frozen_rm` (one RM on the AI labels, never retrained); "
        "`signals_no_siblings` (no sibling margin); "
        "`prior_only` (no error model); `margin_only` (no other judge: the primary's votes, the margin and "
        "length); `votes_only` (no RM margin); `prior_<p>` / `signals_<p>` (the other unsupervised priors, "
        "without / with the error model). "
        "Batch precision: the share of AI errors among the human labels asked as suspects (for the one-shot and "
        "margin-curve methods: among all asked); the uniform exploration sample is reported apart. "
        "AI errors fixed counts every human label and every flip (a wrong flip un-fixes).",
        "",
        table_md(rows, budgets),
    ]
    return "\n".join(lines)


def prior_report(pools, rms, seeds) -> str:
    """One shot, before any human label: how well each prior ranks the primary's errors."""
    from sklearn.metrics import roc_auc_score

    lines = ["## The unsupervised priors on the dev sets (issue 12)", "",
             "Before any human label: P(primary label wrong) from each prior, on the cross-fitted RM trained on "
             f"the primary labels; ROC AUC against the real errors and the share of errors in the top 2% / 6% "
             f"(one shot), mean over seeds {list(range(seeds))}. Command: `python -m benchmarks.signals_dev "
             f"--priors --seeds {seeds} --write`.", "",
             "| set | ranking | AUC | precision@2% | precision@6% |", "|---|---|---|---|---|"]
    for pool, rm in zip(pools, rms):
        err = pool.ai != pool.truth
        n = err.size
        res = defaultdict(list)
        for seed in range(seeds):
            raw = rm.margins(pool.ai, np.ones(n), seed)
            sib = sibling_margins(pool.group, pool.a_id, pool.b_id, np.where(pool.ai == "A", 1.0, -1.0))
            t = signal_table(pool.votes, pool.primary, judge_names=pool.judges, rm_margin=raw,
                             length_a=pool.len_a, length_b=pool.len_b, sibling_margin=sib)
            scores = {"lowest RM margin": -t.column("rm_margin"),
                      "lowest sibling margin": -t.column("sibling_margin")}
            for method in ("fixed", "dawid_skene", "crowdlab"):
                scores[f"prior {method}"] = prior_wrong(t, pool.votes, pool.primary, rm_margin=raw, method=method)
            for name, s in scores.items():
                order = np.argsort(-s, kind="stable")
                res[name].append((roc_auc_score(err, s), err[order[: int(round(0.02 * n))]].mean(),
                                  err[order[: int(round(0.06 * n))]].mean()))
        for name, vals in res.items():
            v = np.mean(vals, axis=0)
            lines.append(f"| {pool.name} | {name} | {v[0]:.3f} | {v[1]:.3f} | {v[2]:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="pandalm,llmbar,mtbench")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", default="0.02,0.04,0.06,0.08,0.10")
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--methods", default="random,oneshot,margin_curve,signals,signals_no_flips,signals_frozen_rm,"
                                         "signals_no_siblings,prior_only,margin_only,votes_only,prior_fixed,prior_crowdlab,signals_fixed,"
                                         "signals_crowdlab")
    ap.add_argument("--opts", default="{}", help="JSON: strength, c, alpha, flip_min_precision, trust_max_error, "
                                                    "sib_l2, sib_human_weight")
    ap.add_argument("--out", type=Path, default=None, help="Write the rows as JSON here.")
    ap.add_argument("--write", action="store_true", help="Write the tables into docs/benchmarks.md.")
    ap.add_argument("--priors", action="store_true", help="Only compare the unsupervised priors (one shot).")
    args = ap.parse_args(argv)
    command = "python -m benchmarks.signals_dev " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    start = time.perf_counter()
    pools = []
    if args.priors:
        pools = [make_pool(LOADERS[name]()) for name in args.sets.split(",")]
        emb = Embeddings()
        md = prior_report(pools, [RM(emb, p) for p in pools], args.seeds)
        print(md)
        if args.write:
            from ._report import write_section

            write_section("signals_priors", md)
        return md
    budgets = [float(x) for x in args.budgets.split(",")]
    opts = json.loads(args.opts)
    emb = Embeddings()
    rows = []
    for name in args.sets.split(","):
        pool = make_pool(LOADERS[name]())
        pools.append(pool)
        print(f"{name}: {pool.truth.size} pairs, {(pool.ai != pool.truth).sum()} AI errors, judges {pool.judges}, "
              f"{pool.n_inconsistent} primary tie_inconsistent left out", flush=True)
        rm = RM(emb, pool)
        for seed in range(args.seeds):
            for m in args.methods.split(","):
                if m == "random":
                    rows += run_random(pool, seed, budgets)
                elif m == "oneshot":
                    rows += run_oneshot(pool, rm, seed, budgets)
                elif m == "margin_curve":
                    rows += run_margin_curve(pool, rm, seed, budgets, args.step)
                else:
                    rows += run_signals(pool, rm, VARIANTS[m], seed, budgets, args.step, opts)
            print(f"  seed {seed} done", flush=True)
    md = markdown(rows, budgets, pools, command, time.perf_counter() - start)
    print(md)
    if args.out:
        args.out.write_text(json.dumps([{k: v for k, v in r.items() if k not in ("labels", "weights")} for r in rows]))
    if args.write:
        from ._report import write_section

        write_section("targeted_feedback_per_set", md)
    return rows


if __name__ == "__main__":
    main()

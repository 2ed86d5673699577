"""Do dissimilar pairs (REAL "easy") carry fewer labeling errors? Measured on MT-bench.

MT-bench has 160 question-turns, each answered by 6 models; 1,814 of the 15 pairs per
question-turn carry expert human votes (3,355 in all) and a GPT-4 verdict (pair-v2,
judged in both orders). Per strategy (easy, hard, centroid, random) and seed, one pair is
chosen per question-turn among the pairs that have labels, from response embeddings
(without the prompt). On the chosen pairs we measure:

* GPT-4-vs-human disagreement: the share of pairs where GPT-4 and the human majority both
  picked a winner and picked different ones (the REAL paper's labeling-error proxy); and
  the 3-way version (A / B / tie; GPT-4's order-inconsistent verdicts count as ties);
* human inter-annotator agreement: on chosen pairs with 2+ votes, the share of agreeing
  vote pairs;
* reward-model accuracy: a Bradley-Terry head (logistic regression on the difference of
  frozen MiniLM response embeddings) trained on the chosen pairs of a random half of the
  questions with their human-majority label, tested on every labeled pair of the other
  half (same split for every strategy under a seed).

Run (writes docs/benchmarks.md section ``dissimilar_pairs`` and docs/dissimilar_pairs.png)::

    PYTHONPATH=. python -m benchmarks.dissimilar_pairs --seeds 10
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rlthf_plugin.data import MTBENCH_VOTES
from rlthf_plugin.io.formats import RowError, parse_mtbench
from rlthf_plugin.store.ledger import Ledger
from rlthf_plugin.models.vectors import EmbeddingCache
from rlthf_plugin.models.llm_embeddings import load_embedder
from rlthf_plugin.pairs import A, B, TIE, majority, pair_id, swap_label
from rlthf_plugin.selection.real import STRATEGIES, select_pairs

from ._report import DOC, write_section

CACHE = Path(__file__).resolve().parent / ".cache" / "embeddings.db"
PLOT = DOC.parent / "dissimilar_pairs.png"


@dataclass
class LabeledPair:
    prompt: int  # index into Corpus.prompts
    a: int  # response row of A (Corpus.texts)
    b: int
    human: list[str] = field(default_factory=list)  # votes, in (a, b) order
    gpt4: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    prompts: list[str]
    question: list[int]  # MT-bench question id of each prompt
    texts: list[str]  # responses (without prompt)
    response_prompt: np.ndarray  # (R,) prompt index of each response
    pairs: list[LabeledPair]
    skipped_rows: int = 0  # vote rows whose two answers are identical


def load_mtbench(path: Path) -> Corpus:
    """Parse the votes file with the importer's own reader; one LabeledPair per pair id."""
    prompts: dict[str, int] = {}
    question: list[int] = []
    texts: dict[tuple[int, str], int] = {}
    pairs: dict[str, LabeledPair] = {}
    skipped = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            try:
                row = parse_mtbench(record, source="mtbench", judge="gpt-4")
            except RowError:  # identical answers: nothing to prefer (the importer refuses them too)
                skipped += 1
                continue
            p = prompts.setdefault(row.prompt, len(prompts))
            if p == len(question):
                question.append(int(record["question_id"]))
            ra = texts.setdefault((p, row.response_a), len(texts))
            rb = texts.setdefault((p, row.response_b), len(texts))
            pid = pair_id(row.prompt, row.response_a, row.response_b)
            pair = pairs.setdefault(pid, LabeledPair(p, ra, rb))
            flip = swap_label if pair.a != ra else (lambda x: x)
            pair.human += [flip(label) for _, label, _ in row.human_votes]
            pair.gpt4 += [flip(vote.label) for vote in row.ai_labels]
    ordered = sorted(texts.items(), key=lambda kv: kv[1])
    return Corpus(list(prompts), question, [t for (_, t), _ in ordered],
                  np.array([p for (p, _), _ in ordered]), list(pairs.values()), skipped)


# -- metrics ------------------------------------------------------------------------------------


def disagreement(pairs: list[LabeledPair]) -> tuple[float, int, float, int]:
    """(winner disagreement, its n, 3-way disagreement, its n)."""
    strict, n_strict, three, n_three = 0, 0, 0, 0
    for p in pairs:
        h, g = majority(p.human).label, majority(p.gpt4).label
        if h in (A, B) and g in (A, B):
            n_strict += 1
            strict += h != g
        if h in (A, B, TIE) and g in (A, B, TIE):
            n_three += 1
            three += h != g
    return strict / max(n_strict, 1), n_strict, three / max(n_three, 1), n_three


def per_prompt_disagreement(pairs: list[LabeledPair], n_prompts: int) -> np.ndarray:
    """``(2, P)``: row 0 = the prompt's chosen pair is decisive (both picked a winner), row 1 = they differ."""
    out = np.zeros((2, n_prompts), dtype=bool)
    for p in pairs:
        h, g = majority(p.human).label, majority(p.gpt4).label
        if h in (A, B) and g in (A, B):
            out[0, p.prompt] = True
            out[1, p.prompt] = h != g
    return out


def bootstrap_cut(easy: list[np.ndarray], random: list[np.ndarray], *, rounds: int = 5000,
                  seed: int = 0) -> tuple[float, float, float]:
    """Relative cut 1 - rate(easy) / rate(random) of the winner disagreement, and its 95%
    bootstrap interval, resampling question-turns (seeds pooled per strategy)."""
    e, r = np.sum(easy, axis=0), np.sum(random, axis=0)  # (2, P) counts over seeds
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, e.shape[1], size=(rounds, e.shape[1]))

    def cut(i):
        rate_e = e[1][i].sum(-1) / np.maximum(e[0][i].sum(-1), 1)
        rate_r = r[1][i].sum(-1) / np.maximum(r[0][i].sum(-1), 1)
        return 1 - rate_e / np.where(rate_r > 0, rate_r, np.nan)

    boot = cut(idx)
    point = float(cut(np.arange(e.shape[1])[None])[0])
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return point, float(lo), float(hi)


def inter_annotator_agreement(pairs: list[LabeledPair]) -> tuple[float, int]:
    """Mean over pairs with 2+ votes of the share of agreeing vote pairs; and that count."""
    values = []
    for p in pairs:
        votes = [v for v in p.human if v in (A, B, TIE)]
        n = len(votes)
        if n >= 2:
            same = sum(c * (c - 1) for c in (votes.count(A), votes.count(B), votes.count(TIE)))
            values.append(same / (n * (n - 1)))
    return (float(np.mean(values)) if values else float("nan")), len(values)


def bradley_terry_accuracy(X: np.ndarray, train: list[LabeledPair], test: list[LabeledPair], *,
                           C: float = 1.0) -> float:
    """Fit r(x) = w.x on (chosen - rejected) differences; accuracy on ``test`` (human winner)."""
    from sklearn.linear_model import LogisticRegression

    def design(pairs):
        rows, y = [], []
        for p in pairs:
            h = majority(p.human).label
            if h in (A, B):
                rows.append(X[p.a] - X[p.b])
                y.append(1 if h == A else 0)
        return np.array(rows), np.array(y)

    Xtr, ytr = design(train)
    Xte, yte = design(test)
    # Both orders of every pair: a symmetric BT model with no position term.
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=2000)
    model.fit(np.vstack([Xtr, -Xtr]), np.concatenate([ytr, 1 - ytr]))
    return float(((Xte @ model.coef_[0] > 0).astype(int) == yte).mean())


# -- the run -------------------------------------------------------------------------------------


def embed(texts: list[str], spec: str) -> tuple[np.ndarray, str]:
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.open(f"sqlite:///{CACHE}", create=True)
    try:
        embedder = load_embedder(spec)
        return EmbeddingCache(embedder, ledger).embed(texts, desc=f"embedding ({spec})"), embedder.name
    finally:
        ledger.close()


def run(data: Path, seeds: int, embedder: str) -> dict:
    corpus = load_mtbench(data)
    started = time.perf_counter()
    X_sel, sel_name = embed(corpus.texts, embedder)
    X_rm = X_sel if embedder == "packaged" else embed(corpus.texts, "packaged")[0]
    embed_s = time.perf_counter() - started
    allowed = np.array([[p.a, p.b] for p in corpus.pairs])
    by_rows = {(min(p.a, p.b), max(p.a, p.b)): p for p in corpus.pairs}
    questions = np.unique(corpus.question)
    question = np.array(corpus.question)
    results: dict[str, dict[str, list[float]]] = {}
    for strategy in [*STRATEGIES, "all"]:
        res = results.setdefault(strategy, defaultdict(list))
        for seed in range(seeds):
            if strategy == "all":
                chosen = corpus.pairs
                sims = np.einsum("md,md->m", X_sel[allowed[:, 0]], X_sel[allowed[:, 1]])
            else:
                sel = select_pairs(X_sel, corpus.response_prompt, strategy=strategy, per_prompt=1, seed=seed,
                                   allowed=allowed)
                chosen, sims = [by_rows[(a, b)] for a, b in zip(sel.first, sel.second)], sel.similarity
            d, n_d, d3, n_d3 = disagreement(chosen)
            if strategy != "all":
                res["per_prompt"].append(per_prompt_disagreement(chosen, len(corpus.prompts)))
            iaa, n_iaa = inter_annotator_agreement(chosen)
            split = np.random.default_rng(1000 + seed)
            train_q = set(split.choice(questions, size=questions.size // 2, replace=False).tolist())
            in_train = np.isin(question, list(train_q))
            train = [p for p in chosen if in_train[p.prompt]]
            test = [p for p in corpus.pairs if not in_train[p.prompt]]
            acc = bradley_terry_accuracy(X_rm, train, test)
            for key, value in (("pairs", len(chosen)), ("similarity", float(np.mean(sims))), ("disagree", d),
                               ("n_disagree", n_d), ("disagree3", d3), ("n_disagree3", n_d3), ("iaa", iaa),
                               ("n_iaa", n_iaa), ("rm_acc", acc), ("rm_train", len(train))):
                res[key].append(value)
    return {"results": results, "embedder": sel_name, "embed_s": embed_s, "seeds": seeds,
            "prompts": len(corpus.prompts), "responses": len(corpus.texts), "labeled_pairs": len(corpus.pairs),
            "skipped_rows": corpus.skipped_rows}


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(out["results"])
    panels = [("disagree", "GPT-4 vs human disagreement\n(both picked a winner)"),
              ("iaa", "human inter-annotator agreement\n(pairs with 2+ votes)"),
              ("rm_acc", "held-out accuracy of a BT head\ntrained on the chosen pairs")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = ["tab:green", "tab:red", "tab:purple", "tab:gray", "tab:blue"]
    for ax, (key, title) in zip(axes, panels):
        means = [np.mean(out["results"][n][key]) for n in names]
        stds = [np.std(out["results"][n][key]) for n in names]
        ax.bar(names, means, yerr=stds, capsize=4, color=colors[:len(names)])
        ax.set_title(title, fontsize=10)
        lo = min(m - s for m, s in zip(means, stds))
        hi = max(m + s for m, s in zip(means, stds))
        ax.set_ylim(max(0.0, lo - 0.1 * (hi - lo + 1e-9) - 0.02), hi + 0.05 * (hi - lo + 1e-9) + 0.01)
        for i, m in enumerate(means):
            ax.text(i, m, f"{m:.3f}", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"REAL pair selection on MT-bench ({out['prompts']} question-turns, one pair each; "
                 f"{out['seeds']} seeds; 'all' = every labeled pair)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(out: dict, command: str) -> str:
    res = out["results"]

    def ms(name, key, fmt="{:.3f}"):
        v = np.asarray(res[name][key], dtype=float)
        spread = "{:.1f}" if fmt == "{:.0f}" else "{:.3f}"
        return fmt.format(v.mean()) + (" ± " + spread.format(v.std()) if v.std() > 1e-9 else "")

    lines = [
        "## REAL: dissimilar pairs on MT-bench (`benchmarks/dissimilar_pairs.py`)",
        "",
        f"Data: MT-bench human judgments with GPT-4 verdicts (shipped copy of "
        f"`dev/mtbench_human_votes_with_gpt4.jsonl.gz`): {out['prompts']} question-turns, "
        f"{out['responses']} responses, {out['labeled_pairs']} labeled pairs ({out['skipped_rows']} vote rows "
        f"whose two answers are identical left out). Per strategy, one pair per "
        f"question-turn among the labeled pairs, chosen from response embeddings without the prompt "
        f"(`{out['embedder']}`); {out['seeds']} seeds (random selection, k-means init, RM train/test split). "
        "Mean ± std over seeds (no ± = the same every seed).",
        "",
        "| strategy | pairs | mean cos sim | GPT-4≠human (winner) | n | GPT-4≠human (A/B/tie) | n "
        "| human IAA | n (2+ votes) | RM acc (held out) | RM train pairs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in res:
        lines.append(
            f"| {name} | {ms(name, 'pairs', '{:.0f}')} | {ms(name, 'similarity')} | {ms(name, 'disagree')} "
            f"| {ms(name, 'n_disagree', '{:.0f}')} | {ms(name, 'disagree3')} | {ms(name, 'n_disagree3', '{:.0f}')} "
            f"| {ms(name, 'iaa')} | {ms(name, 'n_iaa', '{:.0f}')} | {ms(name, 'rm_acc')} "
            f"| {ms(name, 'rm_train', '{:.0f}')} |")
    rnd, easy = np.mean(res["random"]["disagree"]), np.mean(res["easy"]["disagree"])
    rnd3, easy3 = np.mean(res["random"]["disagree3"]), np.mean(res["easy"]["disagree3"])
    cut = (rnd - easy) / rnd if rnd else float("nan")
    cut3 = (rnd3 - easy3) / rnd3 if rnd3 else float("nan")
    verdict = "met" if cut >= 0.30 else "not met"
    all_d = np.mean(res["all"]["disagree"])
    point, lo, hi = bootstrap_cut(res["easy"]["per_prompt"], res["random"]["per_prompt"])
    lines += [
        "",
        f"Easy vs random, GPT-4/human disagreement on winners: {easy:.3f} vs {rnd:.3f} = a "
        f"{100 * cut:.0f}% cut (target ≥ 30%: **{verdict}**); on A/B/tie labels: {easy3:.3f} vs {rnd3:.3f} "
        f"({100 * cut3:.0f}% cut). 95% bootstrap interval of the winner cut (resampling the "
        f"question-turns, random's seeds pooled): {100 * lo:.0f}% to {100 * hi:.0f}% (point {100 * point:.0f}%). "
        f"Against every labeled pair ({all_d:.3f}) easy cuts it by {100 * (all_d - easy) / all_d:.0f}%.",
        "",
        "RM = Bradley-Terry head (logistic regression, no intercept, C = 1) on the difference of frozen "
        "MiniLM response embeddings, trained on the chosen pairs of a random half of the 80 questions "
        "(human-majority winner), tested on every labeled pair of the other half.",
        f"Embedding time this run: {out['embed_s']:.0f} s (MiniLM on CPU; vectors cached by text hash in `benchmarks/.cache/`, "
        "so a rerun only selects and trains).",
        "",
        "![REAL strategies on MT-bench](dissimilar_pairs.png)",
        "",
        f"Reproduce: `{command}`",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=MTBENCH_VOTES, help="MT-bench votes (.jsonl.gz).")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--embedder", default="packaged", help="packaged | st:NAME | hf:PATH (a causal LM).")
    parser.add_argument("--no-write", action="store_true", help="Print, do not write docs/benchmarks.md.")
    args = parser.parse_args(argv)
    out = run(args.data, args.seeds, args.embedder)
    command = "PYTHONPATH=. python -m benchmarks.dissimilar_pairs --seeds " + str(args.seeds)
    if args.embedder != "packaged":
        command += f" --embedder {args.embedder}"
    text = markdown(out, command)
    print(text)
    if not args.no_write:
        plot(out, PLOT)
        write_section("dissimilar_pairs", text)
    return out


if __name__ == "__main__":
    main()

"""Escalate before asking humans: the judge cascade in the loop, on the dev sets (issue 26).

One cheap judge labels every pair (the primary); before each human batch the loop sends
the pairs whose answer is worth the most to a stronger judge, in both orders, and only
its verdicts on those pairs are revealed (as a recorded judge reveals them, each call
counted). Then the signals and the error model are refit and the human batch is drawn
(suspects by P(wrong), a uniform exploration share, unsettled ties in their own share).
The humans are the dev sets' own labels.

Sets (dev only):

- ``llmbar``: LLMBar Processed (466 pairs, gold labels); primary ChatGPT or LLaMA2
  (vanilla, both orders), escalated to GPT-4 vanilla, then (chain) GPT-4 metrics +
  reference;
- ``pandalm``: the PandaLM test set (human majority); primary PandaLM-7B, escalated to
  gpt-3.5-turbo (each judged once in the data: its verdict fills both orders; the cost
  counts two calls a pair, as the product asks both orders).

Arms, with the same seeds and reward model: ``none`` (no escalation), ``cascade`` at
escalation budgets (total share of the pool per judge over the run, spread evenly over
its iterations), ``everything`` (the strong judge on every pair, at once). Measured at
human budgets 2-10% of the pool (2% a batch): errors fixed (pairs whose primary label was
wrong, or undecided, and whose curated label is right; an escalation that changes a label
counts only where it agrees with the humans), errors introduced (right before, wrong
after), batch precision (suspects asked whose audited label was wrong when asked), cost
(human labels and judge calls at ``--human-price`` / per-judge prices).

    python -m benchmarks.cascade_dev --seeds 3

Embeddings: ``benchmarks/.cache/signals_embeddings.npz`` (shared with signals_dev).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.signals_dev import RM, Embeddings
from rlthf_plugin.config import Config
from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.error_model import fit_error_model
from rlthf_plugin.selection.escalation import choose_escalations
from rlthf_plugin.selection.prior import prior_wrong
from rlthf_plugin.selection.signals import encode_votes, primary_labels, signal_table
from rlthf_plugin.selection.trust import decide

DEFAULTS = Config().selection
#: The dev data beside the checkout (a worktree sits one folder deeper).
DEV = next((p / "shared" / "data" / "dev" for p in Path(__file__).resolve().parents[2:4]
            if (p / "shared" / "data" / "dev").is_dir()), Path("shared/data/dev"))
GPT4, GPT4_REF = "GPT-4/Vanilla_NoRules", "GPT-4/Metrics_Reference"
#: Dollars per call (one order), list prices at ~1.2k prompt + 0.3k completion tokens
#: (GPT-4 8k: $30/$60 per M; the metrics+reference protocol is about twice as long;
#: gpt-3.5-turbo $0.5/$1.5 per M). A human label: --human-price.
CALL_PRICE = {GPT4: 0.054, GPT4_REF: 0.10, "gpt-3.5-turbo": 0.00105}


@dataclass
class Data:
    """One dev set with every judge: votes (N, J, 2), judges[0] the primary, truth A/B."""

    name: str
    prompts: list
    a: list
    b: list
    truth: np.ndarray
    votes: np.ndarray
    judges: list

    @property
    def primary_label(self) -> np.ndarray:
        return primary_labels(self.votes, 0)


def _rows(name):
    with gzip.open(DEV / name, "rt") as f:
        return [json.loads(line) for line in f]


def _data(name, judges, items) -> Data:
    """items: (prompt, a, b, truth, [(judge, order, label)]) with a usable truth and primary vote."""
    pi, ji, od, lab, keep = [], [], [], [], []
    for prompt, a, b, truth, vs in items:
        if not isinstance(a, str) or not isinstance(b, str) or not a or not b or a == b or truth not in ("A", "B"):
            continue
        if not any(j == judges[0] for j, _, _ in vs):
            continue
        i = len(keep)
        keep.append((prompt, a, b, truth))
        for j, o, label in vs:
            if j in judges and label in ("A", "B", "tie", "tie_inconsistent"):
                pi.append(i), ji.append(judges.index(j)), od.append(o), lab.append(label)
    votes, _ = encode_votes(pi, ji, od, lab, n_pairs=len(keep), n_judges=len(judges))
    p, a, b, t = (list(x) for x in zip(*keep))
    return Data(name, p, a, b, np.asarray(t), votes, list(judges))


def load_llmbar(primary: str, chain: list[str]) -> Data:
    items = []
    for r in _rows("llmbar_processed_with_llm_judges.jsonl.gz"):
        vs = [(j, o, "A" if str(v) == "1" else "B") for j, orders in r["judges"].items()
              for key, o in (("order_1_2", "ab"), ("order_2_1", "ba")) for v in [orders.get(key)] if str(v) in ("1", "2")]
        items.append((r["input"], r["output_1"], r["output_2"], {"1": "A", "2": "B"}[str(r["gold_label"])], vs))
    return _data(f"llmbar/{primary.split('/')[0]}", [primary, *chain], items)


def load_pandalm() -> Data:
    judge7b = {int(r["idx"]): {0: "tie", 1: "A", 2: "B"}[int(r["pandalm_result"])]
               for r in json.loads((DEV / "pandalm-7b-testset-v1.json").read_text())}
    items = []
    for r in _rows("human_vs_ai_pairs.jsonl.gz"):
        if not r["source"].startswith("PandaLM"):
            continue
        idx = int(r["id"].split("-")[1])
        vs = [("gpt-3.5-turbo", "", r["ai_label"])] + ([("PandaLM-7B", "", judge7b[idx])] if idx in judge7b else [])
        items.append((r["prompt"], r["response_a"], r["response_b"], r["human_label"], vs))
    return _data("pandalm", ["PandaLM-7B", "gpt-3.5-turbo"], items)


@dataclass
class Arm:
    name: str
    #: Total share of the pool per escalation judge over the run (chain order); None = every pair at once.
    budgets: tuple = ()
    chain: int = 0  # how many judges of the set's chain
    rule: str = "p_wrong"
    settle: str = "all"  # all: a settler's winner is the label; ties: only where the primary has none


def simulate(d: Data, rm: RM, arm: Arm, seed: int, budgets, step: float, human_price: float) -> list[dict]:
    n = d.truth.size
    T = int(round(max(budgets) / step))
    k_batch = int(round(step * n))
    chain = list(range(1, 1 + arm.chain))
    revealed = np.zeros((n, len(d.judges)), dtype=bool)
    revealed[:, 0] = True
    calls = np.zeros(len(d.judges), dtype=np.int64)
    human = np.full(n, "", dtype=object).astype(str)
    asked_at = np.zeros(n, dtype=np.int64)
    explored = np.zeros(n, dtype=bool)
    suspect_hits = []
    primary = d.primary_label
    base_wrong = primary != d.truth  # wrong or undecided (tie, tie_inconsistent)
    out = []
    trusted = np.zeros(n, dtype=bool)
    for it in range(T):
        def evidence(it=it):
            x = np.where(revealed[:, :, None], d.votes, np.nan)
            settlers = chain[::-1]
            only = None if arm.settle == "all" else ~np.isin(primary, ["A", "B"])
            t0 = signal_table(x, 0, judge_names=d.judges, settlers=settlers, settle_only=only)
            lab = t0.label
            amp = np.asarray(DEFAULTS.amplification, float)[np.clip(asked_at, 0, len(DEFAULTS.amplification) - 1)]
            cur = np.where(human != "", human, lab)
            w = np.where(human != "", amp, 1.0)
            margin = rm.margins(np.where(np.isin(cur, ["A", "B"]), cur, ""), w, seed + it)
            table = signal_table(x, 0, judge_names=d.judges, rm_margin=margin, settlers=settlers, settle_only=only,
                                 length_a=[len(s) for s in d.a], length_b=[len(s) for s in d.b])
            prior = prior_wrong(table, x, 0, rm_margin=margin, method=DEFAULTS.prior)
            win = np.isin(table.label, ["A", "B"])
            wrong = np.where((human != "") & win, (human != table.label).astype(float), np.nan)
            em = fit_error_model(table, prior, wrong, prior_strength=DEFAULTS.prior_strength, seed=seed)
            return table, em.p_wrong, wrong
        table, p, wrong = evidence()
        # Escalate (before the batch), on this iteration's P(wrong); then refit.
        if arm.chain:
            doubt = ~np.isin(table.label, ["A", "B"])
            for k, j in enumerate(chain):
                share = 1.0 if arm.budgets is None else arm.budgets[k]
                target = n if arm.budgets is None else int(round(share * n * (it + 1) / T))
                budget = max(target - int(revealed[:, j].sum()), 0) if (arm.budgets is not None or it == 0) else 0
                eligible = (human == "") & ~trusted & ~revealed[:, j]
                if arm.budgets is None:
                    eligible = ~revealed[:, j]
                rows = choose_escalations(p, budget=budget, eligible=eligible, inconsistent=doubt & eligible,
                                          rule=arm.rule, skip=k_batch)
                revealed[rows, j] = True
                calls[j] += 2 * rows.size
                v = primary_labels(np.where(revealed[:, j, None], d.votes[:, j, :], np.nan)[:, None, :], 0)
                doubt = (doubt & ~np.isin(v, ["A", "B"])) | (revealed[:, j] & np.isin(table.label, ["A", "B"])
                                                             & (v != table.label))
            table, p, wrong = evidence()
        label = table.label
        win = np.isin(label, ["A", "B"])
        tie = (label == "tie_inconsistent") & (human == "")  # as the product: a judge's tie is never asked
        batch = allocate(np.where(win & (human == ""), p, np.nan), budget=k_batch, eligible=win & (human == ""),
                         tie=tie, shares={"suspect": 1 - DEFAULTS.explore - DEFAULTS.tie_share, "real": 0.0,
                                          "explore": DEFAULTS.explore, "tie": DEFAULTS.tie_share}, seed=seed + it)
        susp = batch.of("suspect")
        suspect_hits += (label[susp] != d.truth[susp]).tolist()
        asked = batch.index
        human[asked] = d.truth[asked]
        asked_at[asked] = it
        explored[batch.of("explore")] = True
        wrong = np.where((human != "") & win, (human != label).astype(float), np.nan)
        dec = decide(p, wrong, flip_min_precision=DEFAULTS.flip_min_precision,
                     trust_max_error=DEFAULTS.trust_max_error, min_evidence=DEFAULTS.min_evidence)
        flipped = np.flatnonzero((dec.decision == "flip") & win & (human == ""))
        trusted = dec.decision == "trust"
        cur = np.where(win, label, "").astype(object)
        cur[flipped] = np.where(label[flipped] == "A", "B", "A")
        cur[human != ""] = human[human != ""]
        cur = cur.astype(str)
        hb = round((it + 1) * step, 4)
        if any(abs(hb - b) < 1e-9 for b in budgets):
            judge_cost = float(sum(calls[j] * CALL_PRICE.get(d.judges[j], 0.0) for j in chain))
            n_human = int((human != "").sum())
            fixed = int((base_wrong & (cur == d.truth)).sum())
            undecided = ~np.isin(primary, ["A", "B"])
            out.append({"set": d.name, "arm": arm.name, "seed": seed, "human": hb, "n": n,
                        "errors": int(base_wrong.sum()), "undecided": int(undecided.sum()), "fixed": fixed,
                        "fixed_undecided": int((undecided & (cur == d.truth)).sum()),
                        "introduced": int((~base_wrong & (cur != d.truth)).sum()),
                        "precision": float(np.mean(suspect_hits)) if suspect_hits else float("nan"),
                        "escalated": {d.judges[j]: int(revealed[:, j].sum()) for j in chain},
                        "calls": int(calls.sum()), "judge_cost": judge_cost, "human_cost": n_human * human_price,
                        "cost": judge_cost + n_human * human_price})
    return out


def arms_for(chain_len: int, esc_budgets, rules, settles, baselines: bool = True) -> list[Arm]:
    arms = [Arm("none")] if baselines else []
    for settle in settles:
        for rule in rules:
            for e in esc_budgets:
                arms.append(Arm(f"cascade@{e:g}/{rule}/{settle}", (e,), 1, rule, settle))
                if chain_len > 1:
                    arms.append(Arm(f"chain@{e:g}+{e:g}/{rule}/{settle}", (e, e), 2, rule, settle))
        if baselines:
            arms.append(Arm(f"everything/{settle}", None, 1, settle=settle))
    return arms


def _mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def summarize(rows, human_budgets) -> str:
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == name]
        r0 = sub[0]
        lines += [f"\n**{name}** ({r0['n']} pairs; {r0['errors']} primary labels wrong or undecided, "
                  f"{r0['undecided']} of them undecided: a tie or a flip across orders)\n",
                  "| arm | human | errors fixed (of them undecided) | introduced | batch precision | escalated pairs "
                  "| judge calls | cost ($) |",
                  "|---|---|---|---|---|---|---|---|"]
        for arm in dict.fromkeys(r["arm"] for r in sub):
            for hb in human_budgets:
                g = [r for r in sub if r["arm"] == arm and abs(r["human"] - hb) < 1e-9]
                if not g:
                    continue
                esc = {k: float(np.mean([r["escalated"][k] for r in g])) for k in g[0]["escalated"]}
                lines.append(f"| {arm} | {hb:.0%} | {_mean(g, 'fixed'):.1f} ({_mean(g, 'fixed_undecided'):.1f}) | "
                             f"{_mean(g, 'introduced'):.1f} | {_mean(g, 'precision'):.2f} | "
                             f"{' + '.join(f'{v:.0f}' for v in esc.values()) or '-'} | {_mean(g, 'calls'):.0f} | "
                             f"{_mean(g, 'cost'):.2f} |")
    return "\n".join(lines)


def headline(rows, human: float = 0.06, esc: float = 0.2) -> str:
    """The issue's targets at ``human`` labels and escalation budget ``esc``, per set."""
    out = [f"\n**Targets** ({human:.0%} human labels, escalation budget {esc:.0%}; means over seeds)\n",
           "| set | arm | errors fixed | vs no escalation | wrong winners fixed (undecided excluded) | vs no escalation "
           "| share of escalate-everything's fixes | share of its cost |",
           "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == name and abs(r["human"] - human) < 1e-9]

        def arm(prefix, sub=sub):
            g = [r for r in sub if r["arm"] == prefix]
            return (_mean(g, "fixed"), _mean(g, "fixed") - _mean(g, "fixed_undecided"), _mean(g, "cost")) if g else None
        none = arm("none")
        arms = sorted({r["arm"] for r in sub})
        every = next((arm(a) for a in arms if a.startswith("everything/all")), None)
        for a in arms:
            if not (a.startswith(f"cascade@{esc:g}/") or a.startswith(f"chain@{esc:g}+")):
                continue
            f, fw, c = arm(a)
            line = f"| {name} | {a} | {f:.1f} | " + (f"{f / none[0]:.2f}x" if none and none[0] else "-") + f" | {fw:.1f} | "
            line += f"{fw / none[1]:.2f}x | " if none and none[1] else "- | "
            line += f"{f / every[0]:.0%} | {c / every[2]:.0%} |" if every else "- | - |"
            out.append(line)
        if none:
            out.append(f"| {name} | none | {none[0]:.1f} | 1x | {none[1]:.1f} | 1x | "
                       + (f"{none[0] / every[0]:.0%} | {none[2] / every[2]:.0%} |" if every else "- | - |"))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sets", default="llmbar-chatgpt,llmbar-llama2,pandalm")
    ap.add_argument("--human", default="0.02,0.06,0.10", help="human budgets (share of the pool)")
    ap.add_argument("--escalation", default="0.05,0.1,0.2,0.5", help="escalation budgets (share of the pool)")
    ap.add_argument("--rules", default="p_wrong")
    ap.add_argument("--settle", default="all")
    ap.add_argument("--human-price", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument("--no-baselines", action="store_true", help="skip the none and everything arms")
    ap.add_argument("--summarize", default=None, help="comma-separated JSON files of earlier runs: print their tables")
    args = ap.parse_args(argv)
    if args.summarize:
        rows = [r for f in args.summarize.split(",") for r in json.loads(Path(f).read_text())]
        hb = sorted({r["human"] for r in rows})
        print(summarize(rows, hb))
        print(headline(rows))
        return rows
    hb = [float(x) for x in args.human.split(",")]
    eb = [float(x) for x in args.escalation.split(",")]
    loaders = {"llmbar-chatgpt": lambda: load_llmbar("ChatGPT/Vanilla_NoRules", [GPT4, GPT4_REF]),
               "llmbar-llama2": lambda: load_llmbar("LLaMA2/Vanilla_NoRules", [GPT4, GPT4_REF]),
               "pandalm": load_pandalm}
    emb = Embeddings()
    rows = []
    t0 = time.perf_counter()
    for name in args.sets.split(","):
        d = loaders[name]()
        rm = RM(emb, d)
        for arm in arms_for(len(d.judges) - 1, eb, args.rules.split(","), args.settle.split(","),
                            not args.no_baselines):
            for h in hb:  # one run per human budget: the escalation budget is spent over its iterations
                for seed in range(args.seeds):
                    rows += simulate(d, rm, arm, seed, [h], args.step, args.human_price)
            print(f"{name} {arm.name}: {time.perf_counter() - t0:.0f}s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows))
    print(summarize(rows, hb))
    print(headline(rows))
    return rows


if __name__ == "__main__":
    main()

"""One workspace, two judges in both orders, the signals strategy: decisions, kinds, the
error model after a labeled batch, and the queue a backend receives (local backend)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa

from rlthf_plugin.backends.local import LocalBackend
from rlthf_plugin.backends.reasons import PLAIN, plain_reason
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.iteration import select_iteration
from rlthf_plugin.loop.oracle import label_with_oracle
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.reward import EmbeddingRewardModel
from rlthf_plugin.store import ledger as L

from ._synthetic_pairs import import_rows, judged_pair

N = 60


def rows(seed=0):
    """The better answer names the capital; the primary judge is wrong on ~25%, the second
    judge mostly right; a few pairs have a primary that contradicts itself."""
    rng = np.random.default_rng(seed)
    cities = ["Paris", "Rome", "Madrid", "Berlin", "Vienna", "Lisbon", "Athens", "Oslo", "Warsaw", "Prague"]
    out = []
    for i in range(N):
        city = cities[i % len(cities)]
        base, truth, other = judged_pair(rng, i, f"The capital is {city}, case {i}.",
                                         f"I am not sure, maybe somewhere {i}.",
                                         f"Question {i}: what is the capital of the country of {city}?")
        prim = other if rng.random() < 0.25 else truth
        ba = prim if i % 12 else other  # every 12th pair: the primary contradicts itself
        second = truth if rng.random() < 0.85 else other
        out += [{**base, "ai_judge": "primary", "ai_order": "ab", "ai_label": prim},
                {**base, "ai_judge": "primary", "ai_order": "ba", "ai_label": ba},
                {**base, "ai_judge": "second", "ai_order": "ab", "ai_label": second},
                {**base, "ai_judge": "second", "ai_order": "ba", "ai_label": second}]
    return out


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder(max_length=32)


def test_signals_iteration_decides_asks_by_kind_and_learns(workspace, tmp_path, embedder):
    import_rows(workspace.ledger, tmp_path, rows())
    cfg = workspace.config
    cfg.selection.budget = 0.1
    cfg.selection.folds = 3
    cfg.selection.explore = 0.2
    factory = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=30).spawn
    rep = select_iteration(workspace.ledger, cfg, factory=factory)
    s = rep.stats
    assert s["strategy"] == "signals" and s["primary_judge"] == "primary"  # the default: most labeled pairs
    assert s["inconsistent"] == N // 12
    budget = round(0.1 * s["pool"])
    # Unsettled tie_inconsistent pairs get their own share (selection.tie_share, 0.1), never the suspects'.
    tie = round(0.1 * budget)
    assert s["counts"]["ask"] == budget and s["kinds"] == {"suspect": budget - tie - round(0.2 * budget / 0.9 * (
        budget - tie) / budget), "real": 0, "explore": round(0.2 * (budget - tie) / 0.9), "tie": tie}
    assert s["error_model"]["n_labels"] == 0 and s["counts"]["flip"] == s["counts"]["keep"] == 0
    with workspace.ledger.engine.connect() as conn:
        ds = conn.execute(sa.select(L.decisions).where(L.decisions.c.iteration == 0)).mappings().all()
    # A self-contradicting primary is never trusted; each asked pair carries its kind.
    assert all(d["action"] != "keep" for d in ds if d["region"] == "inconsistent")
    asked = [d for d in ds if d["action"] == "ask"]
    assert {d["reason"]["kind"] for d in asked} == {"suspect", "explore", "tie"}
    assert all(d["region"] == "tie" for d in asked if d["reason"]["kind"] == "tie")
    suspects = [d["rank"] for d in asked if d["reason"]["kind"] == "suspect"]  # the rank is by P(wrong)
    others = [d["rank"] for d in ds if d["action"] != "ask"]  # (dropped pairs store no reason)
    assert max(suspects) <= np.quantile(others, 0.5)
    # The queue a backend receives: the asked pairs, highest priority first, each with its kind.
    backend = LocalBackend()
    tasks = asked_tasks(workspace.ledger, 0)
    sync.push(workspace.ledger, backend, tasks, iteration=0)
    assert sorted(t.reason["kind"] for t in backend.tasks.values()) == sorted(d["reason"]["kind"] for d in asked)
    assert [t.priority for t in tasks] == sorted((t.priority for t in tasks), reverse=True)
    # Labelers read a plain line per kind; the machine reason (P(wrong), signals) stays hidden.
    plain = {t.reason["kind"]: plain_reason(t.reason) for t in tasks}
    assert plain == {"suspect": PLAIN["suspect"], "explore": PLAIN["explore"], "tie": PLAIN["tie"]}
    assert "judges disagree" in plain["suspect"] and not any(c.isdigit() for c in "".join(plain.values()))
    # After the batch is labeled the error model is fit on it and the second judge weighs in.
    label_with_oracle(workspace.ledger, cfg, "oracle:human", iteration=0)
    rep = select_iteration(workspace.ledger, cfg, factory=factory)
    em = rep.stats["error_model"]
    assert em["n_labels"] > 0 and "against:second" in em["weights"]
    with workspace.ledger.engine.connect() as conn:
        again = conn.execute(sa.select(L.decisions.c.pair_id).where(
            L.decisions.c.iteration == 1, L.decisions.c.action == "ask")).scalars().all()
    assert not set(again) & {d["pair_id"] for d in asked}
    # Priorities grow across batches (iteration + position): the newest batch comes first in a view.
    first, second = asked_tasks(workspace.ledger, 0), asked_tasks(workspace.ledger, 1)
    assert min(t.priority for t in second) > max(t.priority for t in first) > 0


def test_pairs_only_another_judge_voted_on_are_audited_under_it(workspace, tmp_path, embedder, runner):
    """Every 5th pair has no vote of the primary: its label is the second judge's, which is
    then no signal about itself; where that judge splits its orders, the pair is never trusted."""
    from rlthf_plugin.cli import main
    from rlthf_plugin.io.export import curated_rows

    data = []
    for k, r in enumerate(rows(seed=1)):
        i = k // 4
        if i % 5 == 0 and r["ai_judge"] == "primary":
            continue
        if i % 20 == 0 and r["ai_judge"] == "second" and r["ai_order"] == "ba":
            r = {**r, "ai_label": "B" if r["ai_label"] == "A" else "A"}  # the fallback judge splits
        data.append(r)
    import_rows(workspace.ledger, tmp_path, data)
    fallback = {p.id for p in workspace.ledger.get_pairs() if int(p.prompt.split()[1][:-1]) % 5 == 0}
    split = {p.id for p in workspace.ledger.get_pairs() if int(p.prompt.split()[1][:-1]) % 20 == 0}
    cfg = workspace.config
    cfg.selection.budget = 0.1
    cfg.selection.folds = 3
    factory = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=30).spawn
    s = select_iteration(workspace.ledger, cfg, factory=factory).stats
    # The second judge labeled every pair, the primary 48: "second" is the default primary here.
    assert s["primary_judge"] == "second"
    cfg.selection.primary_judge = "primary"
    s = select_iteration(workspace.ledger, cfg, factory=factory).stats
    assert s["primary_judge"] == "primary" and s["label_judges"]["second"] == len(fallback - split)
    assert s["pool"] == sum(s["label_judges"].values())
    with workspace.ledger.engine.connect() as conn:
        ds = conn.execute(sa.select(L.decisions).where(L.decisions.c.iteration == 1)).mappings().all()
    mine = [d for d in ds if d["pair_id"] in fallback]
    assert len(mine) == len(fallback)  # each one is a candidate
    assert all(d["reason"]["label_judge"] == "second" for d in mine if d["action"] != "drop")
    # its code is its reason; only its P(wrong) (the quality estimate's population) and audit region are kept
    assert all(set(d["reason"]) <= {"p_wrong", "audit"} for d in ds if d["action"] == "drop")
    assert all(not any(k.endswith(":second") and not k.startswith("label_judge") for k in d["reason"].get("signals", {}))
               for d in mine)
    assert all(d["region"] == "inconsistent" or d["action"] == "ask" for d in mine if d["pair_id"] in split)
    assert all(d["reason"]["label_judge"] == "primary" for d in ds if d["pair_id"] not in fallback and d["action"] != "drop")
    # status counts the pairs audited under each judge; the export names each row's judge.
    out = runner.invoke(main, ["-w", str(workspace.root), "status", "--json"],
                        env={"RLTHF_SELECTION_PRIMARY_JUDGE": "primary"})
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["audited_per_judge"] == {"primary": N - len(fallback), "second": len(fallback)}
    exported = {r["pair_id"]: r["label_judge"] for r in curated_rows(workspace.ledger, config=cfg)}
    assert {exported[p] for p in fallback - split} == {"second"} and not split & set(exported)


def test_the_siblings_of_a_prompt_speak_against_a_label_that_breaks_their_order(workspace, tmp_path, embedder):
    """Prompts with 5 ranked responses, all 10 pairs each; the judge is right but on the best
    against the worst: that label goes against the order its 9 siblings imply."""
    rng = np.random.default_rng(3)
    out, wrong = [], set()
    for q in range(6):
        answers = [f"Answer {r} of {q}: " + "detail " * (5 - r) for r in range(5)]  # rank 0 is best
        for k, (i, j) in enumerate([(x, y) for x in range(5) for y in range(x + 1, 5)]):
            a, b = (answers[i], answers[j]) if rng.random() < 0.5 else (answers[j], answers[i])
            truth = "A" if a == answers[i] else "B"
            label = truth if (i, j) != (0, 4) else ("B" if truth == "A" else "A")
            if (i, j) == (0, 4):
                wrong.add((f"Prompt {q}", a, b))
            out.append({"id": f"p{q}-{k}", "prompt": f"Prompt {q}", "response_a": a, "response_b": b,
                        "human_label": truth, "ai_judge": "j", "ai_label": label})
    import_rows(workspace.ledger, tmp_path, out, "s.jsonl")
    cfg = workspace.config
    cfg.selection.folds = 3
    cfg.selection.budget = 1.0  # every pair asked: each decision keeps its signals (a drop's reason is its code)
    factory = EmbeddingRewardModel(embedder, ledger=workspace.ledger, epochs=5).spawn
    select_iteration(workspace.ledger, cfg, factory=factory)
    with workspace.ledger.engine.connect() as conn:
        ds = conn.execute(sa.select(L.decisions.c.reason, L.pairs.c.prompt, L.pairs.c.response_a,
                                    L.pairs.c.response_b).join(L.pairs, L.pairs.c.id == L.decisions.c.pair_id)
                          ).mappings().all()
    sib = {(d["prompt"], d["response_a"], d["response_b"]): d["reason"]["signals"].get("sibling_margin", 0.0)
           for d in ds}
    assert len(sib) == 60 and len(wrong) == 6
    right = [v for p, v in sib.items() if p not in wrong]
    assert max(sib[p] for p in wrong) < -1.0 < min(right)

"""Flips certified by an audit (issue 21): the region, the test's error rate, the batch it
draws, and the loop that flips the region's rest at the next iteration."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from rlthf_plugin.config import Config
from rlthf_plugin.errors import ConfigError
from rlthf_plugin.loop.iteration import select_iteration
from rlthf_plugin.loop.oracle import label_with_oracle
from rlthf_plugin.loop.quality import batch_arrays, flips_statement, quality_summary
from rlthf_plugin.loop.pool import read_pool
from rlthf_plugin.loop.strategy_signals import check_quality_settings
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.reward import EmbeddingRewardModel
from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.flip_audit import audit_region, certify_region
from rlthf_plugin.store import iterations as iterations_db
from rlthf_plugin.store import ledger as L

from ._synthetic_pairs import import_rows, judged_pair


def test_the_region_is_the_top_whose_mean_p_wrong_reaches_the_level():
    p = np.array([0.95, 0.9, 0.1, 0.85, 0.7, 0.5, 0.3, np.nan])
    el = np.array([True, True, True, True, True, True, False, True])
    # by P(wrong): 0.95, 0.9, 0.85, 0.7 (mean 0.85), 0.5 (0.78), 0.1 (0.67); 0.3 is not eligible
    r = audit_region(p, eligible=el, budget=2, min_mean=0.75)
    assert np.flatnonzero(r).tolist() == [0, 1, 3, 4, 5]
    # No more pairs than the batch asks: no region (asking all of them is the band).
    assert not audit_region(p, eligible=el, budget=5, min_mean=0.75).any()
    assert not audit_region(p, eligible=el, budget=0, min_mean=0.99).any()
    with pytest.raises(ValueError, match="min_mean must be in \\(0, 1\\)"):
        audit_region(p, eligible=el, budget=2, min_mean=1.0)


@pytest.mark.parametrize("precision,most", [(0.5, 0.1), (0.4, 0.02)])
def test_a_region_without_net_gain_is_certified_at_most_delta_of_the_time(precision, most):
    rng = np.random.default_rng(0)
    m, n, runs = 60, 20, 3000
    certified = 0
    for _ in range(runs):
        wrong = (np.arange(m) < int(precision * m)).astype(float)
        rng.shuffle(wrong)
        sampled = np.zeros(m, bool)
        sampled[rng.choice(m, n, replace=False)] = True
        c = certify_region(np.where(sampled, wrong, np.nan), np.ones(m, bool), sampled, delta=0.1)
        certified += c.certified
        if c.certified:
            assert c.flipped.sum() == m - n and not (c.flipped & sampled).any()
    assert certified / runs <= most


def test_a_clearly_wrong_region_is_certified_and_its_rest_flipped():
    m = 40
    wrong = np.full(m, np.nan)
    region = np.ones(m, bool)
    sampled = np.zeros(m, bool)
    sampled[:12] = True
    wrong[:12] = [1] * 11 + [0]
    c = certify_region(wrong, region, sampled, delta=0.1)
    assert c.certified and c.errors == 11 and c.labels == 12 and c.bound > 0.5
    assert c.flipped.tolist() == [False] * 12 + [True] * 28
    assert c.as_dict()["flipped"] == 28
    with pytest.raises(ValueError, match="sampled holds pairs outside the region"):
        certify_region(wrong, np.zeros(m, bool), sampled)


def test_the_suspects_are_a_uniform_sample_of_the_region():
    p = np.linspace(0.99, 0.01, 50)
    region = np.zeros(50, bool)
    region[:20] = True
    hits = np.zeros(50)
    for seed in range(400):
        b = allocate(p, budget=10, shares={"suspect": 0.8, "explore": 0.2}, seed=seed, audit=region)
        s = b.of("suspect")
        assert region[s].all() and len(s) == 8
        assert np.allclose(b.score[b.kind == "suspect"], p[s])  # the scores stay P(wrong)
        hits[s] += 1
    # each region pair is asked as a suspect about 8/20 of the time; the top is not favoured
    assert np.abs(hits[:20] / 400 - 0.4).max() < 0.1
    plain = allocate(p, budget=10, shares={"suspect": 0.8, "explore": 0.2}, seed=0)
    assert plain.of("suspect").tolist() == list(range(8))


def test_flip_audit_out_of_range_is_refused_in_one_line():
    cfg = Config()
    cfg.selection.flip_audit = 1.0
    with pytest.raises(ConfigError, match="selection.flip_audit must be in \\[0, 1\\), got 1.0") as e:
        check_quality_settings(cfg)
    assert "\n" not in str(e.value)


def _rows(n=120, seed=0):
    """The better answer names the capital; the primary judge is wrong on 30%, two more judges
    are right on 90%: where they outvote the primary, its label is very likely wrong."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base, truth, other = judged_pair(rng, i, f"The capital is city number {i}.", f"I do not know, maybe {i * 7}.",
                                         f"Question {i}: which city is the capital?")
        prim = other if i % 10 < 3 else truth
        for judge in ("primary", "second", "third"):
            lab = prim if judge == "primary" else (truth if rng.random() < 0.9 else other)
            out += [{**base, "ai_judge": judge, "ai_order": o, "ai_label": lab} for o in ("ab", "ba")]
    return out


def test_the_loop_flips_the_rest_of_a_certified_region(workspace, tmp_path):
    import_rows(workspace.ledger, tmp_path, _rows())
    cfg = workspace.config
    cfg.selection.budget = 0.15
    cfg.selection.folds = 3
    cfg.selection.primary_judge = "primary"
    cfg.selection.flip_audit = 0.4  # the prior alone (no label yet) is modest here
    factory = EmbeddingRewardModel(SentenceEmbedder(max_length=32), ledger=workspace.ledger, epochs=30).spawn
    first = select_iteration(workspace.ledger, cfg, factory=factory).stats
    assert first["audit"]["region"] > first["kinds"]["suspect"] > 0
    assert first["certified"]["flips"] == {"audit_iteration": None, "audit_flips": 0, "carried": 0}

    def decisions(it):
        with workspace.ledger.engine.connect() as conn:
            return conn.execute(sa.select(L.decisions).where(L.decisions.c.iteration == it)).mappings().all()

    d0 = decisions(0)
    region = {d["pair_id"] for d in d0 if (d["reason"] or {}).get("audit") == 0}
    suspects = {d["pair_id"] for d in d0 if d["action"] == "ask" and d["reason"]["kind"] == "suspect"}
    assert suspects <= region and len(region) == first["audit"]["region"]
    label_with_oracle(workspace.ledger, cfg, "oracle:human", iteration=0)
    second = select_iteration(workspace.ledger, cfg, factory=factory).stats
    cert = second["certified"]["flips"]
    assert cert["audit_iteration"] == 0 and cert["certified"] and cert["labels"] >= len(suspects)
    assert cert["region"] == len(region) and cert["errors"] / cert["labels"] > 0.5
    flips = [d for d in decisions(1) if d["action"] == "flip" and d["reason"].get("audit_flip") == 0]
    asked0 = {d["pair_id"] for d in d0 if d["action"] == "ask"}
    # the region's rest, less any the exploration sample asks (flipped pairs stay explorable)
    explored1 = {d["pair_id"] for d in decisions(1) if d["action"] == "ask" and d["reason"]["kind"] == "explore"}
    assert {d["pair_id"] for d in flips} == region - asked0 - explored1
    assert cert["audit_flips"] >= len(flips) > 0
    assert all("certified by the audit of iteration 0" in d["reason"]["why"] for d in flips)
    # The flips fix errors on net: the primary is wrong on most of them.
    pool = read_pool(workspace.ledger, cfg, texts=False)
    good = {p.id: "A" if "capital is" in p.response_a else "B" for p in workspace.ledger.get_pairs()}
    assert np.mean([pool.ai[pool.index[d["pair_id"]]] != good[d["pair_id"]] for d in flips]) > 0.5
    # The status reads them; the estimate puts the region in a stratum of its own.
    q = quality_summary(workspace.ledger, cfg)
    assert q["flips"]["pairs"] == q["split"]["flipped"] >= len(flips) and q["flips"]["certified"]
    said = flips_statement(q["flips"])  # status, report and the export's card say what they stand on
    assert f"{q['flips']['audit_flips']} flipped as sets certified by a uniform audit" in said
    assert "the latest, the audit of iteration 0" in said and "probability >= 0.9" in said
    arr = batch_arrays(pool, [iterations_db.decision_stream(workspace.ledger, 0)])
    assert (arr["stratum"][0][arr["audit"][0]] == 2).all() and arr["audit"][0].sum() == len(region)
    # A third iteration keeps them flipped (carried) until a human answers.
    label_with_oracle(workspace.ledger, cfg, "oracle:human", iteration=1)
    third = select_iteration(workspace.ledger, cfg, factory=factory).stats
    kept = {d["pair_id"] for d in decisions(2) if d["action"] == "flip" and d["reason"].get("audit_flip") == 0}
    asked1 = {d["pair_id"] for d in decisions(1) if d["action"] == "ask"}
    assert kept == {d["pair_id"] for d in flips} - asked1 and third["certified"]["flips"]["carried"] >= len(kept)

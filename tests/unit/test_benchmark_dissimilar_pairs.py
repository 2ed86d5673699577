"""The REAL benchmark's data loading and metrics (the full run is `python -m benchmarks.dissimilar_pairs`)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dissimilar_pairs import (LabeledPair, bootstrap_cut, disagreement, inter_annotator_agreement,
                                         load_mtbench)
from rlthf_plugin.data import MTBENCH_VOTES


def test_mtbench_corpus_has_six_answers_per_question_turn():
    corpus = load_mtbench(MTBENCH_VOTES)
    assert len(corpus.prompts) == 160 and len(corpus.pairs) == 1775 and corpus.skipped_rows == 27
    sizes = np.bincount(corpus.response_prompt)
    # 149 question-turns have 6 distinct answers; a few have models with identical answers
    assert sorted(np.bincount(sizes)[4:].tolist()) == [3, 8, 149]
    assert sum(len(p.human) for p in corpus.pairs) == 3355 - 27
    assert all(corpus.response_prompt[p.a] == corpus.response_prompt[p.b] == p.prompt for p in corpus.pairs)


def test_metrics_on_constructed_pairs():
    pairs = [LabeledPair(0, 0, 1, ["A", "A", "B"], ["A"]),           # agree; votes 1/3 agreeing
             LabeledPair(1, 2, 3, ["B"], ["A"]),                      # disagree
             LabeledPair(2, 4, 5, ["tie"], ["tie_inconsistent"]),     # 3-way agree only
             LabeledPair(3, 6, 7, ["A", "B"], ["B"])]                 # no human majority
    d, n, d3, n3 = disagreement(pairs)
    assert (d, n) == (0.5, 2) and (d3, n3) == (pytest.approx(1 / 3), 3)
    iaa, n_iaa = inter_annotator_agreement(pairs)
    assert n_iaa == 2 and iaa == pytest.approx((1 / 3 + 0) / 2)


def test_bootstrap_cut_of_identical_selections_is_zero():
    flags = np.array([[True, True, True, False], [True, False, False, False]])
    point, lo, hi = bootstrap_cut([flags], [flags, flags], rounds=200)
    assert point == 0 and lo == pytest.approx(0) and hi == pytest.approx(0)

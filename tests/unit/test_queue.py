import numpy as np
import pytest

from rlthf_plugin.selection.queue import Source, build_queue


def test_merge_dedupes_and_orders():
    rl = Source("rlthf", ["p1", "p2", "p3"], np.array([1.0, 0.5, 0.2]), [{"region": "flip"}, {"region": "band"}, {}])
    real = Source("real", ["p3", "p4"], np.array([0.9, 0.4]), [{"similarity": 0.1}, {"similarity": 0.3}], weight=0.5)
    q = build_queue([rl, real])
    assert [i.pair_id for i in q] == ["p1", "p2", "p3", "p4"]
    p3 = q[2]
    assert p3.priority == pytest.approx(0.45) and [r["source"] for r in p3.reasons] == ["rlthf", "real"]
    assert [i.pair_id for i in build_queue([rl, real], limit=2)] == ["p1", "p2"]


def test_checks():
    with pytest.raises(ValueError, match="same length"):
        build_queue([Source("x", ["a"], np.array([0.1, 0.2]), [{}])])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        build_queue([Source("x", ["a"], np.array([2.0]), [{}])])

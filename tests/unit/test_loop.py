"""The loop's pure parts: training labels, shard, annotator spec."""

import numpy as np
import pytest

from rlthf_plugin.errors import ConfigError
from rlthf_plugin.loop.pool import in_shard, training_labels
from rlthf_plugin.loop.oracle import parse_annotator


def test_first_iteration_trains_on_every_ai_winner_and_humans_override():
    ai = np.array(["A", "B", "tie", "A"])
    human = np.array(["", "A", "", "B"])
    assert training_labels(ai, human, None).tolist() == ["A", "A", "", "B"]


def test_later_iterations_keep_flip_drop():
    ai = np.array(["A", "B", "A", "B", "A"])
    human = np.array(["", "", "", "", "B"])
    prev = np.array(["keep", "flip", "drop", "ask", ""])
    # kept: AI label; flipped: the other one; dropped / asked-but-unanswered: out; human: in.
    assert training_labels(ai, human, prev).tolist() == ["A", "A", "", "", "B"]


def test_shard_is_stable_and_sized():
    ids = [f"p{i}" for i in range(2000)]
    s = in_shard(ids, 0.25, 0)
    assert abs(s.mean() - 0.25) < 0.04 and (s == in_shard(ids, 0.25, 0)).all()
    assert in_shard(ids, 1.0, 0).all()
    with pytest.raises(ConfigError, match="shard"):
        in_shard(ids, 0.0, 0)


def test_annotator_spec():
    assert parse_annotator("oracle:human") == "human"
    with pytest.raises(ConfigError, match="oracle:FIELD"):
        parse_annotator("argilla")

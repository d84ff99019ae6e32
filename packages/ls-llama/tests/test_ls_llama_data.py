"""The right-context task is the exact mirror of the left-context control."""

import numpy as np
import pytest
from ls_llama.data import make_task, reverse_sentence, spans, task_config


def test_reverse_rebuilds_bio():
    # tokens: t(trigger) a b f ; tags O B-LOC I-LOC O  ->  reversed: f b a t ; O B-LOC I-LOC O
    toks, tags = np.array([9, 4, 5, 1]), np.array([0, 3, 4, 0])
    r_toks, r_tags = reverse_sentence(toks, tags)
    assert r_toks.tolist() == [1, 5, 4, 9]
    assert r_tags.tolist() == [0, 3, 4, 0]
    assert spans(np.array([1, 2, 0, 5, 3])) == [(0, 0, 2), (2, 3, 4), (1, 4, 5)]


def test_trigger_sits_left_or_right_of_every_span():
    cfg = task_config(n_train=50, n_val=5, n_test=5)
    left, right = make_task("left", cfg, 0), make_task("right", cfg, 0)
    n_trig = cfg.n_types * cfg.triggers_per_type
    trig_lo = left.vocab_size - n_trig
    for (lt, lg), (rt, rg) in zip(
        zip(left.train.tokens, left.train.tags), zip(right.train.tokens, right.train.tags)
    ):
        assert np.array_equal(lt[::-1], rt)
        for k, s, _e in spans(lg):  # the trigger of the span's own type is right before it
            assert s > 0 and lt[s - 1] >= trig_lo and (lt[s - 1] - trig_lo) // cfg.triggers_per_type == k
        for k, _s, e in spans(rg):  # ... and right after it in the mirrored task
            assert e < len(rt) and rt[e] >= trig_lo and (rt[e] - trig_lo) // cfg.triggers_per_type == k
    assert sum(len(spans(g)) for g in left.train.tags) == sum(len(spans(g)) for g in right.train.tags) > 0


def test_unknown_task():
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("middle", task_config(n_train=2, n_val=2, n_test=2), 0)

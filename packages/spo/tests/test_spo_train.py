"""spo.train: the preference phase starts at DPO's fixed point (policy = reference), whatever is added.

DPO (Rafailov et al. 2023, Eq. 7): L = -log sigmoid(beta * [(log pi(y_w) - log ref(y_w)) - (log pi(y_l) -
log ref(y_l))]). At the first step the policy is the SFT model, which is also the reference, so every
implicit reward is 0 and L = log 2 exactly. That pins three things of train_preference together: the
reference log-probs precomputed once (eval mode, their own padding) equal the policy's log-probs from
the training forward (train mode, rows [chosen, rejected, degree] padded to one width); the degree
rows of the SPO arms do not leak into the pair log-probs; and the logged total is L_DPO + lambda * L_SSL.
"""

from __future__ import annotations

import copy
import math

import pytest
from spo.data import encode, make_degree_examples, make_pairs
from spo.task import build_task, get_task_tokenizer, response_text
from spo.train import PrefConfig, train_preference

from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm


@pytest.fixture(scope="module")
def setup():
    tok = get_task_tokenizer(1024)
    task = build_task(8, 2, seed=3)
    model = build_tiny_lm(
        TinyLMConfig(vocab_size=len(tok), hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64),
        tok,
        seed=0,
    )
    pairs = make_pairs(task.train, 1, 0.25, seed=0)
    chosen = [encode(tok, p.entity, p.chosen) for p in pairs]
    rejected = [encode(tok, p.entity, p.rejected) for p in pairs]
    deg = make_degree_examples(task.train, 4, "key", seed=0)
    degree = [encode(tok, d.entity, d.text) for d in deg]
    assert all(response_text(p.entity) != p.rejected for p in pairs)
    return tok, model, chosen, rejected, degree, [d.label for d in deg]


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_first_step_is_log2(setup, lam):
    tok, model, chosen, rejected, degree, labels = setup
    cfg = PrefConfig(steps=1, pair_batch=4, degree_batch=8, lam=lam, lr=1e-3, log_every=1)
    head, hist = train_preference(
        copy.deepcopy(model), chosen, rejected, degree, labels, cfg, pad_id=tok.pad_token_id, seed=0
    )
    (row,) = hist
    assert row["pref_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert abs(row["reward_margin"]) < 1e-5
    if lam == 0:
        assert head is None and "degree_loss" not in row
        assert row["loss"] == pytest.approx(row["pref_loss"], abs=1e-6)
    else:
        assert head is not None
        assert row["loss"] == pytest.approx(row["pref_loss"] + lam * row["degree_loss"], rel=1e-5)

"""The fine-tuning rule of the authors' code (second fidelity audit): allanraventos/refine @ 31a9e6e.

* ``refine/training/train.py`` epoch loop: each epoch scans (previous tail + a fresh permutation) once
  in full chunks of the batch size; the live examples of each chunk join a buffer that persists
  across steps and epochs; a step is taken only when the buffer holds a full batch.
* ``filter_samples.py::filter_fn_NCO``: an example is live iff F(N, p_hat) > threshold (strict);
  ``arg_parser.py``: ``--threshold`` default 0.1, ``--num_warmup_steps`` 20, AdamW (PyTorch defaults,
  betas (0.9, 0.999)), ``--loss_function`` default ``custom_loss_function1``.
* ``NCO.py::custom_loss_function1``: F(N, p_hat).detach() * (summed answer-token NLL) / (number of
  answer tokens), mean over the batch; ``NCO.py::f``: F with a Pade branch for x * N < 0.1.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from dco.loss import coverage_factor
from dco.task import build_splits, examples, problem_pairs
from dco.train import LiveBuffer, TrainConfig, batch_loss, is_live, train

from xentlab.data.tokenizer import get_byte_tokenizer
from xentlab.testing import assert_close
from xentlab.testing.reproduce_module import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"
TASK = {"pool_train": 60, "n_train": 24, "n_test": 12, "n_val": 0}
MODEL = {"hidden": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 64, "max_positions": 32}


class _FixedOrder(LiveBuffer):
    """LiveBuffer with hand-chosen permutations instead of seeded ones."""

    def __init__(self, perms: dict[int, list[int]], bs: int):
        super().__init__(len(perms[1]), seed=0, bs=bs)
        self.perms = perms

    def order(self, epoch: int) -> list[int]:
        return self.carry + self.perms[epoch]


def test_live_buffer_hand_case():
    """Hand derivation (n = 5, batch 2, examples 1 and 3 dead):
    epoch 1, order [0 1 2 3 4]: chunk [0 1] -> buffer [0]; chunk [2 3] -> buffer [0 2] -> step [0 2];
    4 + 2 > 5, so [4] is the tail. Epoch 2, order [4] + [4 3 2 1 0]: chunk [4 4] -> step [4 4];
    chunk [3 2] -> buffer [2]; chunk [1 0] -> buffer [2 0] -> step [2 0]; nothing left."""
    buf = _FixedOrder({1: [0, 1, 2, 3, 4], 2: [4, 3, 2, 1, 0]}, bs=2)
    calls: list = []

    def live(cand):
        calls.append(("filter", list(cand)))
        return [i not in (1, 3) for i in cand]

    for batch in buf.epoch(1, live):
        calls.append(("step", batch))
    assert calls == [("filter", [0, 1]), ("filter", [2, 3]), ("step", [0, 2])]
    assert buf.carry == [4] and buf.buffer == [] and buf.replaced == 2
    calls.clear()
    for batch in buf.epoch(2, live):
        calls.append(("step", batch))
    # the filter of a chunk runs after the previous step (with the updated weights), as officially
    assert calls == [
        ("filter", [4, 4]),
        ("step", [4, 4]),
        ("filter", [3, 2]),
        ("filter", [1, 0]),
        ("step", [2, 0]),
    ]
    assert buf.carry == [] and buf.buffer == [] and buf.replaced == 4


def test_live_buffer_official_stale_tail():
    """Hand derivation of the official stale-tail branch (n = 5, batch 2, examples 1 and 3 dead).
    Epoch 1, order [0 1 2 3 4]: [0 1] -> buffer [0]; [2 3] -> [0 2] -> step [0 2]; tail [4].
    Epoch 2, order [4] + [4 2 0 1 3] (6 = 3 x 2): [4 4] -> step; [2 0] -> step; [1 3] -> buffer []
    short with the order used up: the official loop breaks WITHOUT resetting its tail, so [4] stays.
    Epoch 3, order [4] + [0 1 2 3 4]: [4 0] -> step [4 0]; [1 2] -> [2]; [3 4] -> [2 4] -> step;
    6 + 2 > 6, so the tail is reset to []. (Without the branch epoch 3 would scan [0 1 2 3 4] and
    step once, on [0 2], leaving the tail [4].)"""
    perms = {1: [0, 1, 2, 3, 4], 2: [4, 2, 0, 1, 3], 3: [0, 1, 2, 3, 4]}
    buf = _FixedOrder(perms, bs=2)

    def live(cand):
        return [i not in (1, 3) for i in cand]

    got = [list(buf.epoch(e, live)) for e in (1, 2, 3)]
    assert got == [[[0, 2]], [[4, 4], [2, 0]], [[4, 0], [2, 4]]]
    assert buf.carry == [] and buf.buffer == [] and buf.stale == 1
    want, quirk = _official_loop([perms[e] for e in (1, 2, 3)], 2, live)
    assert got == want and quirk == 1


def _official_loop(orders: list[list[int]], bs: int, live) -> tuple[list[list[list[int]]], int | None]:
    """A transcription of the epoch loop of refine/training/train.py (one process), for comparison:
    the batches trained on in each epoch, and the first epoch (0-based) whose end took the official
    stale-tail branch (``sample_indices_unused`` not reset, so the next epoch rescans an old tail)."""
    out, sample_indices_unused, unused_indices, quirk = [], [], [], None
    for e, perm in enumerate(orders):
        sample_indices = sample_indices_unused + list(perm)
        last_used, steps = 0, []
        while True:
            if last_used + bs > len(sample_indices):
                sample_indices_unused = sample_indices[last_used:]
                break
            inds = sample_indices[last_used : last_used + bs]
            last_used += bs
            unused_indices += [i for i, ok in zip(inds, live(inds)) if ok]
            if len(unused_indices) < bs:
                if last_used >= len(sample_indices):
                    quirk = e if quirk is None else quirk  # official: the tail is not reset here
                    break
                continue
            steps.append(unused_indices[:bs])
            unused_indices = unused_indices[bs:]
        out.append(steps)
    return out, quirk


def _every_third_dead(cand):  # deterministic, order-dependent: every third filtered example is dead
    _every_third_dead.k += len(cand)
    return [(_every_third_dead.k - len(cand) + j) % 3 != 2 for j in range(len(cand))]


# (n, bs, live rule, first epoch index of the official stale-tail branch, from the transcription).
# "few": 5 live examples, like late DCO at cpu scale: n = 150, batch 32 reaches the exact-multiple
# order 160 in epoch 16 (index 15) with a short buffer. "all": CE, the branch can never be taken.
CASES = [
    (23, 4, "third", 7),
    (150, 32, "third", None),
    (10, 3, "third", 2),
    (150, 32, "few", 15),
    (150, 32, "all", None),
]


@pytest.mark.parametrize("n,bs,rule,quirk_at", CASES)
def test_live_buffer_matches_the_official_loop(n, bs, rule, quirk_at):
    live = {
        "third": _every_third_dead,
        "few": lambda c: [i < 5 for i in c],
        "all": lambda c: [True] * len(c),
    }[rule]
    buf = LiveBuffer(n, seed=7, bs=bs)
    orders, got = [], []
    _every_third_dead.k = 0
    for epoch in range(1, 21):
        g = torch.Generator().manual_seed(7 * 1_000_003 + epoch)
        orders.append(torch.randperm(n, generator=g).tolist())
        got.append(list(buf.epoch(epoch, live)))
    _every_third_dead.k = 0
    want, quirk = _official_loop(orders, bs, live)
    assert quirk == quirk_at  # the case exercises (or, for CE, cannot reach) the stale-tail branch
    assert got == want  # every epoch, including those after the stale-tail branch
    assert sum(map(len, got)) > 0 and (buf.stale > 0) == (quirk_at is not None)
    if rule == "all":  # CE: every scanned example is trained on once; only the last tail is left
        assert all(len(b) == bs for ep in got for b in ep)
        assert bs * sum(map(len, got)) + len(buf.carry) == 20 * n and buf.buffer == []


def test_threshold_is_strict():
    # official: inds[factor > threshold]; an example exactly at the threshold is dropped
    f = torch.tensor([0.05, 0.1, 0.1000001, 1.0], dtype=torch.float64)
    assert is_live(f, 0.1) == [False, False, True, True]


def _naive_f(p: float, n: int) -> float:
    return n * (1 - p) ** (n - 1) * p / (1 - (1 - p) ** n)


def _official_f(p: float, n: int) -> float:
    """refine/training/NCO.py::f, transcribed (float64): a Pade form where p * N < 0.1."""
    if n == 1:
        return 1.0
    if p * n < 0.1:
        num = 1 - (n - 1) * p + (n - 1) * (n - 2) * p * p / 2
        den = 1 - (n - 1) / 2 * p + (n - 1) * (n - 2) / 6 * p * p
        return num / den
    return _naive_f(p, n)


@pytest.mark.parametrize("n", [1, 4, 32, 256])
def test_factor_matches_the_official_f(n):
    ps = [1e-6, 1e-4, 3e-4, 0.01, 0.05, 0.2, 0.5, 0.9]
    got = coverage_factor(torch.tensor([math.log(p) for p in ps], dtype=torch.float64), n)
    for p, g in zip(ps, got.tolist()):
        if n == 1 or p * n >= 0.1:  # the official closed form: equal to rounding
            assert g == pytest.approx(_official_f(p, n), rel=1e-9)
        else:  # the official Pade branch approximates the same function closely
            assert g == pytest.approx(_official_f(p, n), rel=5e-4)
            assert g == pytest.approx(_naive_f(p, n), rel=1e-7)


def test_length_normalised_loss_has_the_official_gradient():
    """d/d log_p of our length-normalised DCO loss = -F / L / B, equal to the gradient of the official
    custom_loss_function1 (F detached times the summed NLL over L answer tokens, batch mean).
    Hand values: p = 1/2, N = 4: F = 4 * 1/2 * 1/8 / (1 - 1/16) = 4/15; p = 0.1: F = 0.2916 / 0.3439."""
    log_p = torch.tensor([math.log(0.5), math.log(0.1)], dtype=torch.float64, requires_grad=True)
    n_tok = torch.tensor([4, 3])
    loss = batch_loss(log_p, 4, n_tok)
    want_loss = (-math.log(1 - 0.5**4) / 4 - math.log(1 - 0.9**4) / 3) / 2
    assert loss.item() == pytest.approx(want_loss, rel=1e-12)
    (g,) = torch.autograd.grad(loss, log_p)
    want = torch.tensor([-(4 / 15) / 4 / 2, -(0.2916 / 0.3439) / 3 / 2], dtype=torch.float64)
    assert_close(g, want, rtol=1e-12, atol=0)
    # the official loss: a different value, the same gradient
    lp = log_p.detach().clone().requires_grad_(True)
    f = torch.tensor([_official_f(0.5, 4), _official_f(0.1, 4)], dtype=torch.float64)
    official = (f * (-lp) / n_tok).mean()
    (g_off,) = torch.autograd.grad(official, lp)
    assert_close(g, g_off, rtol=1e-12, atol=0)
    # N = 1 (CE): -1 / L / B; without n_tokens: the sequence CE, -1 / B
    lp = log_p.detach().clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(batch_loss(lp, 1, n_tok), lp)
    assert_close(g1, torch.tensor([-1 / 8, -1 / 6], dtype=torch.float64), rtol=1e-15, atol=0)
    (g2,) = torch.autograd.grad(batch_loss(lp, 1), lp)
    assert_close(g2, torch.tensor([-0.5, -0.5], dtype=torch.float64), rtol=1e-15, atol=0)


@pytest.fixture(scope="module")
def tok():
    return get_byte_tokenizer()


def _run(tok, **kw):
    from dco.experiment import build_model

    exs = examples(tok, problem_pairs(build_splits(TASK).train))
    model = build_model(MODEL, tok, 0)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    rows: list[dict] = []
    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, eval_every=1, batch_rule="refine", **kw)
    train(model, tok, exs, cfg, seed=0, evaluate=lambda e: {"epoch": e}, on_log=lambda **r: rows.append(r))
    same = all(torch.equal(init[k], v) for k, v in model.state_dict().items())
    return rows, same


def test_refine_rule_steps_only_on_full_live_batches(tok):
    # CE: 24 examples, batch 8 -> 3 full chunks per epoch, no tail, 3 steps per epoch
    rows, same = _run(tok, n_prime=1, epsilon=0.1, length_norm=True)
    assert [r["steps"] for r in rows] == [3, 6, 9] and not same
    assert all(r["replaced"] == 0 for r in rows)
    # every example dead (F <= 1 < epsilon): no optimizer step at all, the weights never move
    rows, same = _run(tok, n_prime=256, epsilon=1.1)
    assert [r["steps"] for r in rows] == [0, 0, 0] and same
    assert rows[-1]["replaced"] == 72 and "loss" not in rows[-1]
    # every example live: as many steps as CE
    rows, _ = _run(tok, n_prime=256, epsilon=0.0)
    assert [r["steps"] for r in rows] == [3, 6, 9]


def test_cpu_protocol_uses_the_official_settings():
    repro = load_reproduce(REPRO)
    for scale in ("cpu", "smoke"):
        t = repro.BASE[scale]["train"]
        assert t["batch_rule"] == "refine" and t["epsilon"] == 0.1 and t["length_norm"] is True
        assert tuple(t["betas"]) == (0.9, 0.999) and t["warmup_steps"] == 20
    full = repro.FULL
    assert full["epsilon"] == 0.1 and full["batch_rule"] == "refine" and full["length_norm"] is True
    assert tuple(full["betas"]) == (0.9, 0.999) and full["warmup_steps"] == 20
    # 3: DCO with the official stale-tail branch (LiveBuffer); CE cannot reach it, stays at 2
    assert {e.name: e.version for e in repro.EXPERIMENTS} == {
        "ce": "2",
        "dco4": "3",
        "dco32": "3",
        "dco256": "3",
    }
    # the base pretraining keeps the rule its length was selected with (dco.base)
    from dco.base import pretrain_config

    assert pretrain_config(repro.BASE["cpu"]["base"], 32, 121).batch_rule == "stream"

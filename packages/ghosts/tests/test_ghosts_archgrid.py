"""The architecture grid (official experiments/archgrid/run.py): schedule, split, models, runs."""

from __future__ import annotations

import math

import pytest
import torch
from ghosts.archgrid import ARCHGRID_ARCHS, ArchgridConfig, run_arm, spike_lr, summarize
from ghosts.data import load_digits_file_order
from ghosts.models import build_model
from ghosts.radius import rho_a_along


@pytest.fixture(scope="module")
def digits():
    return load_digits_file_order()


def test_spike_is_exactly_one_step_at_x10():
    cfg = ArchgridConfig()
    lrs = [spike_lr(t, cfg) for t in range(cfg.steps)]
    assert lrs[50] == pytest.approx(0.15, rel=1e-15)  # 10 x 0.015 at step 50 only
    assert [t for t, lr in enumerate(lrs) if lr != 0.015] == [50]


def test_run_uses_the_schedule_and_only_the_spike_step_differs(digits):
    cfg = ArchgridConfig(steps=6, spike_at=3)
    log = run_arm("plain", "ag_mlp_ln", digits, seed=0, cfg=cfg)
    assert log["lr"] == [0.015, 0.015, 0.015, 0.15, 0.015, 0.015]
    assert sorted(log["probe"]) == [2, 3]  # the step before the spike and the spike step


def test_official_split_is_file_order(digits):
    # n_test = int(0.2 * 1797) = 359: the first 359 rows of digits.csv.gz are the test set
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    assert digits.x_test.shape == (359, 64) and digits.x_train.shape == (1438, 64)
    assert torch.equal(digits.y_test, torch.from_numpy(y[:359]))
    assert torch.equal(digits.x_train[0], torch.from_numpy(x[359]).float() / 16)
    assert float(digits.x_train.max()) == 1.0


def test_models_have_the_official_parameter_counts():
    # hand count from experiments/archgrid/run.py:
    # Transformer(32): embed 64*32+32, qkv 32*96+96, out 32*32+32, ffn1 32*128+128, ffn2 128*32+32,
    #   two LayerNorms 2*64, head 32*10+10 = 2080+3168+1056+4224+4128+128+330 = 15114
    # MLPLN(64): 64*64+64 three times, three LayerNorms 3*128, head 650 = 3*4160+384+650 = 13514
    # CNNBN(32): conv1 32*3+32, conv2 32*32*3+32, two BatchNorm1d 2*64, head 330 = 128+3104+128+330 = 3690
    counts = {a: sum(p.numel() for p in build_model(a).parameters()) for a in ARCHGRID_ARCHS}
    assert counts == {"ag_transformer": 15114, "ag_mlp_ln": 13514, "ag_cnn_bn": 3690}


def test_one_token_attention_is_the_identity_mixer():
    # with a single token the attention weights are softmax of one score = 1, so the block is
    # x + out(v) + FFN and the query/key weights get no gradient
    torch.manual_seed(0)
    model = build_model("ag_transformer")
    x = torch.rand(7, 64)
    torch.nn.functional.cross_entropy(model(x), torch.arange(7)).backward()
    q_and_k = model.qkv.weight.grad[:64]
    assert torch.count_nonzero(q_and_k) == 0 and torch.count_nonzero(model.qkv.weight.grad[64:]) > 0


def test_arm_is_deterministic_and_the_controller_caps_lr_g(digits):
    cfg = ArchgridConfig(steps=5, spike_at=2, base_lr=0.5)  # a large lr so that the cap binds
    first = run_arm("rho", "ag_mlp_ln", digits, seed=1, cfg=cfg)
    assert first == run_arm("rho", "ag_mlp_ln", digits, seed=1, cfg=cfg)
    assert all(t <= r * (1 + 1e-12) for t, r in zip(first["tau"], first["rho"]))
    assert any(lr < spike_lr(t, cfg) for t, lr in enumerate(first["lr"]))  # the cap changed some lr


def test_controller_step_zero_equals_plain_when_the_cap_is_idle(digits):
    # at step 0 both arms start from the same seeded init; with a tiny lr the cap cannot bind, so the
    # first loss, lr and test accuracy are identical
    cfg = ArchgridConfig(steps=2, spike_at=1, base_lr=1e-6)
    plain = run_arm("plain", "ag_transformer", digits, seed=2, cfg=cfg)
    rho = run_arm("rho", "ag_transformer", digits, seed=2, cfg=cfg)
    assert plain["loss"] == rho["loss"] and plain["acc"] == rho["acc"] and plain["lr"] == rho["lr"]


def test_the_controller_radius_is_rho_a_along_the_descent_direction(digits):
    # hand check of step 0: rho_a along -g/||g|| of the full-batch loss at the seeded init
    cfg = ArchgridConfig(steps=1, spike_at=0)
    log = run_arm("rho", "ag_cnn_bn", digits, seed=0, cfg=cfg)
    torch.manual_seed(0)
    model = build_model("ag_cnn_bn")
    torch.nn.functional.cross_entropy(model(digits.x_train), digits.y_train).backward()  # train-mode BN
    g = {n: p.grad for n, p in model.named_parameters()}
    g_norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in g.values()))
    rho = rho_a_along(model, digits.x_train, {n: -t / g_norm for n, t in g.items()})
    assert log["rho"][0] == pytest.approx(rho, rel=1e-12)
    assert log["tau"][0] == pytest.approx(min(0.15 * g_norm, rho), rel=1e-12)  # step 0 is the spike here


def test_summary_reads_the_dip_and_the_spike_step():
    log = {
        "acc": [0.5, 0.9, 0.2, 0.6, 0.8],
        "loss": [2.0, 1.0, 0.5, 3.0, 0.7],
        "lr": [0.015] * 5,
        "rho": [],
        "tau": [],
        "probe": {1: {"tau": 1.0, "rho": 2.0, "r": 0.5}, 2: {"tau": 3.0, "rho": 1.0, "r": 3.0}},
        "final_acc_eval_mode": 0.7,
    }
    s = summarize(log, ArchgridConfig(steps=5, spike_at=2))
    assert s["pre_acc"] == 0.9 and s["dip_acc"] == 0.2 and s["dip_retained"] == pytest.approx(0.2 / 0.9)
    assert s["final_retained"] == pytest.approx(0.8 / 0.9)
    assert s["peak_loss_after_spike"] == 3.0 and s["loss_pre_spike"] == 0.5 and s["loss_after_spike"] == 3.0
    assert s["r_spike"] == 3.0 and s["r_pre_spike"] == 0.5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: run_arm("sgd", "ag_mlp_ln", d, 0, ArchgridConfig(steps=2, spike_at=1)), "unknown method"),
        (lambda d: run_arm("rho", "ag_mlp_ln", d, 0, ArchgridConfig(steps=2, spike_at=2)), "spike_at"),
        (lambda d: load_digits_file_order(1.5), "test_frac"),
    ],
)
def test_archgrid_bad_input(digits, call, match):
    with pytest.raises(ValueError, match=match):
        call(digits)

"""Fidelity audit: the models, seeded inits, training recipe, step sign and logging order of the
phase / lrspike / tempfp experiments against the official code (piyush314/ghosts-of-softmax)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ghosts.data import load_digits
from ghosts.models import build_model
from ghosts.phase import OFFICIAL_TRAINING, accuracy, descent_direction
from ghosts.spike import SpikeConfig, run_spike
from torch import nn
from torch.func import functional_call


@pytest.fixture(scope="module")
def digits():
    return load_digits(split_seed=0, test_size=0.2)


def test_parameter_counts_match_hand_counts_of_the_official_classes():
    # linear   ghostenvelope Linear:            64*10 + 10 = 650
    # mlp      lrspike SimpleMLP:               (64*128 + 128) + (128*10 + 10) = 8320 + 1290 = 9610
    # mlp_ln   phasetransition MLPDigits:       8320 + LN 256 + (128*128 + 128) + LN 256 + 1290 = 26634
    # cnn      ghostenvelope CNN:               (9*16 + 16) + (16*9*32 + 32) + (128*64 + 64) + 650
    #                                           = 160 + 4640 + 8256 + 650 = 13706
    # cnn_bn   ours: cnn + BatchNorm2d(16), BatchNorm2d(32) affine = 13706 + 32 + 64 = 13802
    # transformer  tfmbottlenecks TinyTransformer (qkv and proj WITHOUT bias): embed_row 8*32 + 32 = 288,
    #          cls 32, pos 9*32 = 288; per block LN 64 + qkv 32*96 = 3072 + proj 32*32 = 1024 + LN 64
    #          + fc1 32*128 + 128 = 4224 + fc2 128*32 + 32 = 4128 = 12576, two blocks 25152;
    #          final LN 64, head 330: 288 + 32 + 288 + 25152 + 64 + 330 = 26154
    # mlp_gelu tempfingerprint MLPDigits:       8320 + (128*128 + 128) + 1290 = 26122
    expected = {
        "linear": 650,
        "mlp": 9610,
        "mlp_ln": 26634,
        "cnn": 13706,
        "cnn_bn": 13802,
        "transformer": 26154,
        "mlp_gelu": 26122,
    }
    counts = {a: sum(p.numel() for p in build_model(a).parameters()) for a in expected}
    assert counts == expected


@pytest.mark.parametrize(
    "arch, layers",
    [
        ("linear", [(64, 10)]),  # ghostenvelope Linear
        ("mlp", [(64, 128), (128, 10)]),  # lrspike SimpleMLP: fc1, fc2
        ("mlp_ln", [(64, 128), (128, 128), (128, 10)]),  # MLPDigits: LayerNorms draw no random numbers
        ("mlp_gelu", [(64, 128), (128, 128), (128, 10)]),  # tempfingerprint MLPDigits: fc1, fc2, head
        # archgrid/run.py Transformer: embed, qkv (with bias), out, ffn1, ffn2, then norm1, norm2 (no
        # random numbers), head (audit 3: archgrid was not pinned)
        ("ag_transformer", [(64, 32), (32, 96), (32, 32), (32, 128), (128, 32), (32, 10)]),
        # archgrid MLPLN: fc1, fc2, fc3 (each followed by a LayerNorm that draws nothing), head
        ("ag_mlp_ln", [(64, 64), (64, 64), (64, 64), (64, 10)]),
    ],
)
def test_seeded_init_draws_the_official_numbers(arch, layers):
    # The official scripts call torch.manual_seed(seed) and then build their class, whose nn.Linear
    # layers are created in the order listed (archgrid's run_single: right before make_model for each
    # arm); the same seed must give the same weights here.
    torch.manual_seed(3)
    reference = [nn.Linear(i, o) for i, o in layers]
    torch.manual_seed(3)
    ours = [m for m in build_model(arch).modules() if isinstance(m, nn.Linear)]
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_tiny_transformer_init_draws_the_tfmbottlenecks_numbers():
    # tfmbottlenecks TinyTransformer: embed_row, cls/pos (zeros), per block TinySelfAttention(qkv, proj
    # without bias) and fc1, fc2 (LayerNorms draw nothing), final norm, head, then normal_(std 0.02) on
    # cls and pos. Our attention is written out but its layers are drawn in the same order.
    torch.manual_seed(5)
    embed = nn.Linear(8, 32)
    blocks = [
        (nn.Linear(32, 96, bias=False), nn.Linear(32, 32, bias=False), nn.Linear(32, 128), nn.Linear(128, 32))
        for _ in range(2)
    ]
    head = nn.Linear(32, 10)
    cls, pos = torch.zeros(1, 1, 32), torch.zeros(1, 9, 32)
    nn.init.normal_(cls, std=0.02)
    nn.init.normal_(pos, std=0.02)
    torch.manual_seed(5)
    model = build_model("transformer")
    assert torch.equal(model.embed_row.weight, embed.weight) and torch.equal(model.head.weight, head.weight)
    assert torch.equal(model.cls, cls) and torch.equal(model.pos, pos)
    for block, (qkv, proj, fc1, fc2) in zip(model.blocks, blocks):
        assert block.qkv.bias is None and block.proj.bias is None
        for ours, ref in ((block.qkv, qkv), (block.proj, proj), (block.fc1, fc1), (block.fc2, fc2)):
            assert torch.equal(ours.weight, ref.weight)


def test_phase_recipe_is_ghostenvelope_archs_table():
    # ghostenvelope/models.py::ARCHS: Linear (6e-3, 500), MLP [= MLP+LayerNorm] (2.5e-3, 520),
    # CNN (2.5e-3, 560), TinyTfm (2e-3, 600); the lrspike MLP borrows the MLP entry, CNN+BN the CNN's.
    assert OFFICIAL_TRAINING == {
        "linear": (6e-3, 500),
        "mlp": (2.5e-3, 520),
        "mlp_ln": (2.5e-3, 520),
        "cnn": (2.5e-3, 560),
        "cnn_bn": (2.5e-3, 560),
        "transformer": (2e-3, 600),
    }


def test_descent_direction_is_minus_the_normalised_gradient_float64(digits):
    # v = -g/||g|| (ghostenvelope logitsSlopesJvp: tans = -g/||g||), so the directional derivative of
    # the loss along v is g . v = -||g||; checked by a central difference in float64.
    torch.manual_seed(0)
    model = build_model("linear").double()
    x, y = digits.x_train[:256].double(), digits.y_train[:256]
    v = descent_direction(model, x, y)
    params = dict(model.named_parameters())
    g = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
    g_norm = math.sqrt(sum(float(t.pow(2).sum()) for t in g))
    base = {n: p.detach() for n, p in params.items()}
    eps = 1e-6
    with torch.no_grad():
        plus = F.cross_entropy(functional_call(model, {n: base[n] + eps * v[n] for n in base}, (x,)), y)
        minus = F.cross_entropy(functional_call(model, {n: base[n] - eps * v[n] for n in base}, (x,)), y)
    slope = float(plus - minus) / (2 * eps)
    assert slope == pytest.approx(-g_norm, rel=1e-6)
    assert math.sqrt(sum(float(t.pow(2).sum()) for t in v.values())) == pytest.approx(1.0, abs=1e-12)


def test_lrspike_logs_the_pre_update_test_accuracy(digits):
    # official run_one appends test_acc(model) BEFORE opt.apply, so acc[0] is the freshly seeded model
    # and acc[spike_at] the model that enters the spike step.
    seed = 4
    torch.manual_seed(seed)
    init = build_model("mlp")
    with torch.no_grad():
        acc_init = accuracy(init(digits.x_test), digits.y_test)
    log = run_spike("plain", 1e-2, digits, seed, SpikeConfig(steps=3, spike_at=1))
    assert log["acc"][0] == acc_init
    assert len(log["acc"]) == 3 and not log["diverged"]


def test_archgrid_cnn_bn_init_and_forward_equal_the_official_class():
    # archgrid CNNBN: conv1 Conv1d(1, 32, 3, padding 1), bn1, conv2 Conv1d(32, 32, 3, padding 1), bn2,
    # AdaptiveAvgPool1d(1), head Linear(32, 10); forward relu(bn(conv)) twice, pool, head. Restated
    # here from nn modules in the official creation order, in train mode (the official loop's mode).
    torch.manual_seed(11)
    conv1, bn1 = nn.Conv1d(1, 32, 3, padding=1), nn.BatchNorm1d(32)
    conv2, bn2 = nn.Conv1d(32, 32, 3, padding=1), nn.BatchNorm1d(32)
    pool, head = nn.AdaptiveAvgPool1d(1), nn.Linear(32, 10)
    torch.manual_seed(11)
    model = build_model("ag_cnn_bn")
    for ours, ref in ((model.conv1, conv1), (model.conv2, conv2), (model.head, head)):
        assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)
    x = torch.rand(16, 64, generator=torch.Generator().manual_seed(0))
    h = F.relu(bn1(conv1(x.unsqueeze(1))))
    h = F.relu(bn2(conv2(h)))
    expected = head(pool(h).squeeze(-1))
    torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=1e-6)


def test_archgrid_transformer_forward_equals_the_official_formula():
    # archgrid Transformer.forward: x = embed(x)[:, None]; q, k, v = qkv(norm1(x)).chunk(3);
    # x = x + out(softmax(q k^T / sqrt(32)) v); x = x + ffn2(gelu(ffn1(norm2(x)))); head(x[:, 0]).
    # With one token softmax(.) = 1, so the block is x + out(v) + FFN: restated in float64.
    torch.manual_seed(2)
    model = build_model("ag_transformer").double()
    x = torch.rand(8, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h = model.embed(x)
    v = model.qkv(model.norm1(h))[:, 64:]
    h = h + model.out(v)
    h = h + model.ffn2(F.gelu(model.ffn1(model.norm2(h))))
    torch.testing.assert_close(model(x), model.head(h), rtol=1e-12, atol=1e-12)

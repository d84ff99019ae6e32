"""Harmonic/geometric slopes and the ALiBi bias against hand values; RoPE relative-position property;
gradcheck of the combined attention."""

import math

import pytest
import torch
from genai_probopt.model import ModelConfig, MQADecoder, mqa_attention
from genai_probopt.positional import (
    alibi_bias,
    apply_rope,
    causal_mask,
    geometric_slopes,
    harmonic_slopes,
    rope_angles,
)

from xentlab.testing import assert_close, check_gradients


def test_harmonic_slopes_hand_values():
    # the harmonic series 1, 1/2, 1/3, 1/4
    assert_close(harmonic_slopes(4), torch.tensor([1.0, 0.5, 1 / 3, 0.25], dtype=torch.float64))
    with pytest.raises(ValueError, match="heads"):
        harmonic_slopes(0)


def test_geometric_slopes_match_press_et_al():
    # Press et al.: for 8 heads the slopes are 1/2, 1/4, ..., 1/256
    assert_close(geometric_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)], dtype=torch.float64))


def test_alibi_bias_hand_matrix():
    # slopes (1, 1/2), T = 3: bias_h(i, j) = -m_h (i - j) for j <= i, -inf above
    b = alibi_bias(torch.tensor([1.0, 0.5], dtype=torch.float64), 3)
    inf = float("-inf")
    want = torch.tensor(
        [[[0, inf, inf], [-1, 0, inf], [-2, -1, 0]], [[0, inf, inf], [-0.5, 0, inf], [-1, -0.5, 0]]],
        dtype=torch.float64,
    )
    assert torch.equal(torch.isinf(b), torch.isinf(want))
    assert_close(b[torch.isfinite(b)], want[torch.isfinite(want)])
    assert torch.equal(torch.isinf(causal_mask(3)[0]), torch.isinf(want[0]))


def test_rope_logits_depend_only_on_offset():
    torch.manual_seed(0)
    q, k = torch.randn(8), torch.randn(8)
    cos, sin = rope_angles(20, 8)

    def logit(i, j):
        return apply_rope(q, cos[i], sin[i]) @ apply_rope(k, cos[j], sin[j])

    assert_close(logit(5, 2), logit(15, 12), atol=1e-5)
    assert_close(logit(3, 3), q @ k, atol=1e-5)  # equal positions: the rotation cancels


def test_combined_attention_gradcheck():
    torch.manual_seed(0)
    t, hd = 5, 4
    cos, sin = rope_angles(t, hd)
    bias = alibi_bias(harmonic_slopes(2), t)

    def f(q, k, v):
        return mqa_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, bias)

    check_gradients(f, torch.randn(1, 2, t, hd), torch.randn(1, 1, t, hd), torch.randn(1, 1, t, hd))


def test_attention_with_zero_slope_bias_equals_softmax_reference():
    # float64 reference by explicit loops: out_i = sum_j softmax_j(q_i.k_j/sqrt(d) - m (i-j)) v_j
    torch.manual_seed(1)
    q, k, v = torch.randn(1, 1, 4, 2, dtype=torch.float64), torch.randn(1, 1, 4, 2, dtype=torch.float64), \
        torch.randn(1, 1, 4, 2, dtype=torch.float64)  # fmt: skip
    m = 0.7
    out = mqa_attention(q, k, v, alibi_bias(torch.tensor([m], dtype=torch.float64), 4))
    for i in range(4):
        w = torch.tensor([q[0, 0, i] @ k[0, 0, j] / math.sqrt(2) - m * (i - j) for j in range(i + 1)])
        w = torch.softmax(w, 0)
        assert_close(out[0, 0, i], sum(w[j] * v[0, 0, j] for j in range(i + 1)))


@pytest.mark.parametrize("pos", ["rope", "alibi", "rope_alibi_harmonic"])
def test_model_is_causal_and_length_free(pos):
    torch.manual_seed(0)
    m = MQADecoder(ModelConfig(vocab_size=11, hidden=16, heads=2, layers=1, pos=pos)).eval()
    x = torch.randint(0, 11, (2, 40))
    with torch.no_grad():
        full = m(x)
        prefix = m(x[:, :25])
    assert full.shape == (2, 40, 11)
    assert_close(full[:, :25], prefix, atol=1e-5)  # future tokens do not change earlier outputs


def test_bad_config_raises():
    with pytest.raises(ValueError, match="pos must be one of"):
        ModelConfig(pos="sinusoidal")


def test_geometric_slopes_at_the_cpu_head_count_match_the_official_recipe():
    # audit 3: ofirpress/attention_with_linear_biases (fairseq/models/transformer.py, get_slopes):
    # start = 2^(-2^-(log2 H - 3)), slopes = start * start^i, i = 0..H-1. H = 4 (the cpu models):
    # start = 2^-2, slopes 1/4, 1/16, 1/64, 1/256.
    start = 2.0 ** (-(2.0 ** -(math.log2(4) - 3)))
    assert start == 0.25
    want = torch.tensor([start * start**i for i in range(4)], dtype=torch.float64)
    assert_close(geometric_slopes(4), want)
    assert_close(geometric_slopes(4), torch.tensor([1 / 4, 1 / 16, 1 / 64, 1 / 256], dtype=torch.float64))


@pytest.mark.parametrize(
    "pos,slopes,rotates",
    [
        ("rope", None, True),
        ("alibi", geometric_slopes, False),
        ("rope_alibi_harmonic", harmonic_slopes, True),
    ],
)
def test_each_scheme_uses_its_own_bias_and_rotation(pos, slopes, rotates):
    # audit 3: the switch that the three experiments compare (README "What is implemented"): RoPE-only has
    # the plain causal mask; ALiBi-only has Press et al.'s geometric slopes and no rotation; the proposal
    # has the harmonic slopes 1/h AND the rotation. A swapped mapping would not fail any other test.
    m = MQADecoder(ModelConfig(vocab_size=5, hidden=16, heads=4, layers=1, pos=pos))
    bias, rope = m._positional(6)
    want = causal_mask(6) if slopes is None else alibi_bias(slopes(4).float(), 6)
    assert bias.shape == want.shape and torch.equal(torch.isinf(bias), torch.isinf(want))
    assert_close(bias[torch.isfinite(bias)], want[torch.isfinite(want)])
    assert (rope is not None) == rotates

"""Quantiser against hand values and its round-trip bound; staircase schedules and memory accounting;
the quantised-cache attention; the smoke run."""

from pathlib import Path

import pytest
import torch
from genai_probopt.kv_quant import Staircase, mean_cache_bits, quantize_dequantize
from genai_probopt.model import mqa_attention
from genai_probopt.positional import alibi_bias, harmonic_slopes

from xentlab.testing import assert_close, run_smoke

REPRO = Path(__file__).parents[1] / "reproduce.py"


def test_quantizer_hand_values():
    # x = (0, 0.2, 0.5, 1), 2 bits: min 0, max 1, s = 1/3; codes round(x / s) = (0, 1, 2, 3)
    # (0.2 * 3 = 0.6 -> 1; 0.5 * 3 = 1.5 -> 2, round half to even)
    x = torch.tensor([0.0, 0.2, 0.5, 1.0], dtype=torch.float64)
    assert_close(quantize_dequantize(x, 2), torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))
    # 1 bit: levels {min, max}
    assert_close(quantize_dequantize(x, 1), torch.tensor([0, 0, 0, 1], dtype=torch.float64))
    # >= 16 bits: untouched; constant vector: returned exactly
    assert torch.equal(quantize_dequantize(x, 16), x)
    c = torch.full((3,), 2.5)
    assert torch.equal(quantize_dequantize(c, 4), c)
    with pytest.raises(ValueError, match="bits"):
        quantize_dequantize(x, 0)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantizer_round_trip_bound(bits):
    # |x - x_hat| <= s / 2 with s = (max - min) / (2^b - 1), per row; min and max are exact
    torch.manual_seed(bits)
    x = torch.randn(64, 16, dtype=torch.float64) * 3
    xh = quantize_dequantize(x, bits)
    s = (x.amax(-1, keepdim=True) - x.amin(-1, keepdim=True)) / (2**bits - 1)
    assert ((x - xh).abs() <= s / 2 + 1e-12).all()
    assert_close(xh.amin(-1), x.amin(-1))
    assert_close(xh.amax(-1), x.amax(-1))
    assert len(torch.unique(xh[0])) <= 2**bits


def test_staircase_bits_and_memory():
    s = Staircase((8, 24), (8, 4, 2))
    ages = torch.tensor([0, 7, 8, 23, 24, 100])
    assert s.bits_for_age(ages).tolist() == [8, 8, 4, 4, 2, 2]
    # cache of 64 tokens: 8 x 8b + 16 x 4b + 40 x 2b = 208 payload bits / 64 = 3.25, + 32/16 overhead
    assert s.cache_bits(64, 16) == pytest.approx(3.25 + 2.0)
    assert Staircase((), (4,)).cache_bits(64, 16) == pytest.approx(6.0)
    assert Staircase((), (16,)).cache_bits(5, 16) == pytest.approx(16.0)  # unquantised: no overhead
    # the cpu schedules are at most the memory of uniform 4-bit over the scored positions 32..63
    for sched in (s, Staircase((2, 6, 14), (16, 8, 4, 2))):
        assert mean_cache_bits(sched, range(32, 64), 16) <= 6.0
    masks = s.level_masks(30)
    assert sum(m.long() for _, m in masks).equal(torch.tril(torch.ones(30, 30, dtype=torch.long)))
    with pytest.raises(ValueError, match="len\\(bits\\)"):
        Staircase((4,), (8,))
    with pytest.raises(ValueError, match="increasing"):
        Staircase((8, 4), (8, 4, 2))


def test_quantised_attention_matches_explicit_per_pair_reference():
    # reference: for every (i, j), quantise k_j and v_j at the width of age i - j, then attend
    torch.manual_seed(0)
    t, hd = 7, 4
    q = torch.randn(1, 2, t, hd, dtype=torch.float64)
    k, v = torch.randn(1, 1, t, hd, dtype=torch.float64), torch.randn(1, 1, t, hd, dtype=torch.float64)
    bias = alibi_bias(harmonic_slopes(2), t)
    s = Staircase((2, 4), (8, 3, 2))
    out = mqa_attention(q, k, v, bias, s)
    for h in range(2):
        for i in range(t):
            bits = [int(s.bits_for_age(torch.tensor(i - j))) for j in range(i + 1)]
            kq = torch.stack([quantize_dequantize(k[0, 0, j], b) for j, b in enumerate(bits)])
            vq = torch.stack([quantize_dequantize(v[0, 0, j], b) for j, b in enumerate(bits)])
            w = torch.softmax(kq @ q[0, h, i] / hd**0.5 + bias[h, i, : i + 1], 0)
            assert_close(out[0, h, i], w @ vq)
    # uniform 16 bits = the unquantised path
    assert_close(mqa_attention(q, k, v, bias, Staircase((), (16,))), mqa_attention(q, k, v, bias))


def test_smoke(tmp_path):
    # run_smoke validates the schema and that every metric is finite; audit 3: also that each scheme
    # reports the extrapolation and every schedule's penalty and memory (a renamed key would drop a claim)
    result = run_smoke(REPRO, tmp_path)
    metrics = result["metrics"]
    for pos in ("rope", "alibi", "rope_alibi_harmonic"):
        assert f"{pos}/excess_bits_16" in metrics and f"{pos}/increase_32" in metrics
        for name in ("uniform8", "uniform4", "uniform2", "saq_8_4_2", "saq_16_8_4_2"):
            assert f"{pos}/kv_{name}_penalty" in metrics and f"{pos}/kv_{name}_bits" in metrics
    assert "gain/uniform4_minus_saq842_penalty" in metrics


def test_mean_cache_bits_of_the_cpu_schedules_by_hand():
    # audit 3: the README's memory figures (5.71 and 5.37 bits/element) by hand, head dim 16 (overhead
    # 32 / 16 = 2 bits per quantised element). Cache of L tokens (L = 33..64 for query positions 32..63):
    # saq_8_4_2: 8 x (8+2) + 16 x (4+2) + (L-24) x (2+2) = 80 + 4L bits -> 4 + 80 / L per element;
    # saq_16_8_4_2: 2 x 16 + 4 x (8+2) + 8 x (4+2) + (L-14) x (2+2) = 64 + 4L -> 4 + 64 / L.
    harmonic = sum(1.0 / L for L in range(33, 65))
    got = mean_cache_bits(Staircase((8, 24), (8, 4, 2)), range(32, 64), 16)
    assert got == pytest.approx(4 + 80 * harmonic / 32, abs=1e-12)
    got = mean_cache_bits(Staircase((2, 6, 14), (16, 8, 4, 2)), range(32, 64), 16)
    assert got == pytest.approx(4 + 64 * harmonic / 32, abs=1e-12)
    assert mean_cache_bits(Staircase((), (4,)), range(32, 64), 16) == pytest.approx(6.0, abs=1e-12)

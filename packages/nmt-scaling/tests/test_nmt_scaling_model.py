"""The encoder-decoder model (parameter counts, causality, padding), the schedule, the test loss, and
the per-seed analysis on a ladder whose law is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nmt_scaling import train as train_mod
from nmt_scaling.analysis import analyse, ladder
from nmt_scaling.model import ModelShape, Seq2Seq, decoder_input, seeded_model
from nmt_scaling.task import BOS, PAD
from nmt_scaling.train import lr_at


def _enc_layer(d, f):
    # self-attention 4 d^2 + 4 d, FFN 2 d f + f + d, two LayerNorms 2 * 2 d
    return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d


def _dec_layer(d, f):
    # + cross-attention 4 d^2 + 4 d and a third LayerNorm 2 d
    return _enc_layer(d, f) + 4 * d * d + 4 * d + 2 * d


@pytest.mark.parametrize("le,ld", [(1, 1), (3, 2)])
def test_non_embedding_counts_match_the_hand_formula(le, ld):
    d, f = 64, 256
    m = Seq2Seq(ModelShape(le, ld, 50, 60, d_model=d, heads=4, enc_ffn=f, dec_ffn=f))
    assert m.n_encoder() == le * _enc_layer(d, f) + 2 * d  # + the final LayerNorm
    assert m.n_decoder() == ld * _dec_layer(d, f) + 2 * d
    assert _enc_layer(64, 256) == 49_984 and _dec_layer(64, 256) == 66_752  # the numbers of model.py


def test_decoder_is_causal_and_source_padding_is_ignored():
    torch.manual_seed(0)
    m = Seq2Seq(ModelShape(2, 2, 30, 40, d_model=16, heads=2, enc_ffn=32, dec_ffn=32)).eval()
    src = torch.tensor([[5, 6, 7, 2]])
    tgt = torch.tensor([[8, 9, 10, 2]])
    with torch.no_grad():
        base = m(src, decoder_input(tgt))
        # changing a later target token leaves the earlier positions' logits unchanged
        tgt2 = tgt.clone()
        tgt2[0, 2] = 11
        other = m(src, decoder_input(tgt2))
        torch.testing.assert_close(base[:, :3], other[:, :3])
        assert not torch.allclose(base[:, 3], other[:, 3])
        # right-padding the source does not change anything
        padded = m(torch.tensor([[5, 6, 7, 2, PAD, PAD]]), decoder_input(tgt))
        torch.testing.assert_close(base, padded, atol=1e-5, rtol=1e-5)
    assert decoder_input(tgt).tolist() == [[BOS, 8, 9, 10]]


def test_seeded_model_is_reproducible_and_leaves_global_rng_alone():
    shape = ModelShape(1, 1, 20, 20, d_model=16, heads=2, enc_ffn=32, dec_ffn=32)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = seeded_model(shape, 7), seeded_model(shape, 7)
    after = torch.rand(1)
    assert before.item() == after.item()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_shape_errors():
    with pytest.raises(ValueError, match=">= 1"):
        ModelShape(0, 1, 10, 10)
    with pytest.raises(ValueError, match="divisible"):
        ModelShape(1, 1, 10, 10, d_model=30, heads=4)


def test_lr_schedule_warms_up_then_stays_constant():
    # by hand: W = 10, lr = 1e-3; step 0 -> t = 1 -> 1e-4; t = W -> the peak; then flat, with no end
    assert lr_at(0, 1e-3, 10) == pytest.approx(1e-4)
    assert lr_at(4, 1e-3, 10) == pytest.approx(5e-4)
    assert lr_at(9, 1e-3, 10) == pytest.approx(1e-3)
    assert all(lr_at(s, 1e-3, 10) == pytest.approx(1e-3) for s in (10, 100, 10_000))
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_at(0, 1e-3, 0)


def test_test_loss_is_mean_ce_over_non_pad_targets():
    # a "model" returning fixed logits: uniform over V gives exactly ln V per counted token
    class Uniform(torch.nn.Module):
        def forward(self, src, dec_in):
            return torch.zeros(dec_in.shape[0], dec_in.shape[1], 7)

    tgt = torch.tensor([[3, 4, 2, PAD], [5, 2, PAD, PAD]])
    assert train_mod.test_loss(Uniform(), tgt, tgt) == pytest.approx(math.log(7))


def _metrics(law, heldout_law=None) -> dict:
    """One seed's runner metrics for a 1..4 cross ladder + (3,3), (4,4), with losses from ``law``."""
    ne1, nd1 = 50_000.0, 66_000.0
    shapes = {(e, 2) for e in (1, 2, 3, 4)} | {(2, d) for d in (1, 2, 3, 4)} | {(3, 3), (4, 4)}
    m = {}
    for e, d in shapes:
        name = f"e{e}d{d}"
        held = e == d and e > 2
        f = heldout_law if (held and heldout_law) else law
        m |= {f"{name}/n_enc": e * ne1, f"{name}/n_dec": d * nd1, f"{name}/final_loss": f(e * ne1, d * nd1),
              f"{name}/is_heldout": float(held), f"{name}/is_base": float((e, d) == (2, 2)),
              f"{name}/l_inf_true": 0.18}  # fmt: skip
    return m


def test_analysis_recovers_an_exact_bivariate_law_and_beats_total_n():
    def law(ne, nd):
        return 0.2 + 0.5 * (1e5 / ne) ** 0.1 * (1.32e5 / nd) ** 0.6

    out = analyse(_metrics(law), n_boot=0)
    assert out["bi/r2"] == pytest.approx(1.0, abs=1e-9)
    assert out["bi/p_e"] == pytest.approx(0.1, rel=1e-3) and out["bi/p_d"] == pytest.approx(0.6, rel=1e-3)
    assert out["bi/p_e_over_p_d"] == pytest.approx(0.1 / 0.6, rel=1e-3)
    assert out["bi/opt_ratio_defined"] == 1.0
    assert out["bi/l_inf_minus_true"] == pytest.approx(0.02, abs=1e-4)
    assert out["bi/heldout_max_abs_rel_err"] < 1e-6
    # total N alone cannot capture p_e != p_d: a positive held-out error gap
    assert out["cmp/uni_minus_bi_heldout_err"] > 0.005
    rows = ladder(_metrics(law))
    assert len(rows) == 9 and sum(r["heldout"] for r in rows) == 2 and sum(r["base"] for r in rows) == 1


def test_analysis_reports_a_held_out_miss():
    def law(ne, nd):
        return 0.2 + 0.5 * (1e5 / ne) ** 0.3 * (1.32e5 / nd) ** 0.3

    out = analyse(_metrics(law, heldout_law=lambda ne, nd: 1.1 * law(ne, nd)), n_boot=0)
    # the held-out models are 10% worse than the law: relative error 1/1.1 - 1
    assert out["bi/heldout_max_abs_rel_err"] == pytest.approx(1 - 1 / 1.1, rel=1e-4)
    assert np.isfinite(out["uni/heldout_mean_abs_rel_err"])

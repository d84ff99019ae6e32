"""xentlab.models.small_decoder: shapes, causality, the non-embedding parameter count, rotary positions
depend only on relative offsets, deterministic initialisation, sampling, clear errors."""

from __future__ import annotations

import pytest
import torch

from xentlab.models.small_decoder import DecoderLM, LMShape, _rope_cache, _rotate_half, sample, seeded_decoder

SHAPE = LMShape(vocab_size=32, hidden=16, layers=2, heads=2, max_positions=16)


def test_forward_shape_and_causality():
    torch.manual_seed(0)
    model = DecoderLM(SHAPE)
    x = torch.randint(0, 32, (3, 12))
    logits = model(x)
    assert logits.shape == (3, 12, 32)
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 32  # change the future: positions < 7 must not move
    torch.testing.assert_close(model(y)[:, :7], logits[:, :7])
    assert not torch.allclose(model(y)[:, 7:], logits[:, 7:])


def test_non_embedding_parameter_count():
    # per layer: q, k, v, o = 4 d^2; SwiGLU gate+up 2 d f and down f d = 3 d f; two RMSNorm gains 2 d;
    # plus the final norm d. d = 16, f = 64, 2 layers: 2 * (1024 + 3072 + 32) + 16 = 8272
    model = DecoderLM(SHAPE)
    assert SHAPE.non_embedding_params == 8272
    assert model.non_embedding_params() == 8272
    total = sum(p.numel() for p in model.parameters())
    assert total - model.non_embedding_params() == 32 * 16  # only the (tied) token embedding left out


def test_rotary_scores_depend_only_on_relative_position():
    # RoPE: <R_i q, R_j k> = <R_{i+s} q, R_{j+s} k> for every shift s
    shape = LMShape(vocab_size=4, hidden=8, layers=1, heads=1, max_positions=32)
    cos, sin = _rope_cache(shape)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)

    def rot(v, pos):
        return v * cos[pos] + _rotate_half(v) * sin[pos]

    base = torch.dot(rot(q, 5), rot(k, 2))
    for s in (1, 7, 20):
        torch.testing.assert_close(torch.dot(rot(q, 5 + s), rot(k, 2 + s)), base, atol=1e-5, rtol=1e-5)
    # and rotation keeps norms
    torch.testing.assert_close(rot(q, 9).norm(), q.norm())


def _seeded(seed: int) -> DecoderLM:
    torch.manual_seed(seed)
    return DecoderLM(SHAPE)


def test_init_is_deterministic_in_seed():
    a, b, c = _seeded(3), _seeded(3), _seeded(4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    assert not torch.equal(a.embed.weight, c.embed.weight)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="head dim"):
        LMShape(vocab_size=8, hidden=12, layers=1, heads=4)  # head dim 3 is odd
    with pytest.raises(ValueError, match="positive"):
        LMShape(vocab_size=8, hidden=16, layers=0, heads=2)
    with pytest.raises(ValueError, match="max_positions"):
        DecoderLM(SHAPE)(torch.zeros(1, 17, dtype=torch.long))


def test_seeded_decoder_ignores_and_keeps_the_global_stream():
    torch.manual_seed(123)
    a = seeded_decoder(SHAPE, 5)
    after_a = torch.rand(1)
    torch.manual_seed(123)
    torch.rand(7)  # a different history before the build
    b = seeded_decoder(SHAPE, 5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    torch.manual_seed(123)
    seeded_decoder(SHAPE, 6)
    assert torch.equal(torch.rand(1), after_a)  # the caller's stream did not move


def test_sample_is_seeded_and_follows_the_model():
    model = _seeded(0)
    prompts = torch.randint(0, 32, (64, 2), generator=torch.Generator().manual_seed(1))
    a = sample(model, prompts, 5, torch.Generator().manual_seed(2))
    b = sample(model, prompts, 5, torch.Generator().manual_seed(2))
    assert a.shape == (64, 7) and torch.equal(a, b) and torch.equal(a[:, :2], prompts)
    # zero blocks (the residual stream is the embedding) and only token 3's embedding non-zero: after
    # a context of 3s the logits are 50 d for token 3 and 0 elsewhere, so only 3 is ever drawn
    with torch.no_grad():
        for blk in model.blocks:
            for p in blk.parameters():
                p.zero_()
        model.embed.weight.zero_()
        model.embed.weight[3] = 50.0
    peaked = sample(model, torch.full((4, 1), 3), 6, torch.Generator().manual_seed(0))
    assert torch.all(peaked == 3)
    with pytest.raises(ValueError, match="new_tokens"):
        sample(model, prompts, -1, torch.Generator())

"""Tiny Llama / GPT-2 built from config: sizes, tied weights, seeded init, save/load."""

from __future__ import annotations

import pytest
import torch

from xentlab.models.tiny_lm import (
    PRESETS,
    TinyLMConfig,
    build_tiny_lm,
    count_parameters,
    load_tiny_lm,
    preset,
    save_tiny_lm,
)

SMALL = {"hidden": 32, "layers": 2, "heads": 2, "kv_heads": 1, "intermediate": 64, "vocab_size": 64}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_have_1_to_5_million_parameters(name):
    # counted from the formula, without building: embedding + per-layer weights (tied head)
    cfg = preset(name)
    d, v, f, L = cfg.hidden, cfg.vocab_size, cfg.intermediate, cfg.layers
    if cfg.arch == "llama":
        kv = d // cfg.heads * cfg.kv_heads
        per_layer = d * d * 2 + d * kv * 2 + 3 * d * f + 2 * d
        total = v * d + L * per_layer + d
    else:
        per_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
        total = v * d + cfg.max_positions * d + L * per_layer + 2 * d
    assert 1_000_000 <= total <= 5_000_000, (name, total)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_build_counts_and_ties_weights(arch):
    cfg = TinyLMConfig(arch=arch, **SMALL)
    model = build_tiny_lm(cfg)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    n = count_parameters(model)
    assert n == sum(p.numel() for p in model.parameters())  # parameters() already dedups tied ones
    untied = build_tiny_lm(TinyLMConfig(arch=arch, tie_embeddings=False, **SMALL))
    assert count_parameters(untied) == n + 64 * 32
    logits = model(torch.randint(0, 64, (2, 5))).logits
    assert logits.shape == (2, 5, 64)


def test_llama_1m_preset_builds_with_about_a_million_parameters():
    n = count_parameters(build_tiny_lm(preset("llama-1m")))
    assert 1_000_000 <= n <= 1_200_000


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    cfg = TinyLMConfig(**SMALL)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_tiny_lm(cfg, seed=7)
    after = torch.rand(1)
    b = build_tiny_lm(cfg, seed=7)
    c = build_tiny_lm(cfg, seed=8)
    assert torch.equal(before, after)  # the seeded build did not consume the caller's stream
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_special_token_ids_reach_config_and_generation_config():
    class FakeTok:
        pad_token_id, bos_token_id, eos_token_id = 5, 6, 7

        def __len__(self):
            return 64

    model = build_tiny_lm(TinyLMConfig(**SMALL), FakeTok())
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (5, 6, 7)
    assert model.generation_config.eos_token_id == 7
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_lm(TinyLMConfig(**{**SMALL, "vocab_size": 65}), FakeTok())


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_save_and_load_round_trip(tmp_path, arch):
    model = build_tiny_lm(TinyLMConfig(arch=arch, **SMALL), seed=0).eval()
    save_tiny_lm(model, tmp_path / "m")
    save_tiny_lm(model, tmp_path / "m")  # overwriting an existing directory works
    loaded = load_tiny_lm(tmp_path / "m").eval()
    x = torch.randint(0, 64, (2, 6))
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="arch"):
        TinyLMConfig(arch="bert")
    with pytest.raises(ValueError, match="divisible"):
        TinyLMConfig(hidden=30, heads=4)
    with pytest.raises(ValueError, match="kv_heads"):
        TinyLMConfig(heads=4, kv_heads=3)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("llama-70b")

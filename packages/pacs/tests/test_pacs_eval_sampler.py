"""The cpu and smoke scales draw their pass@k samples (held-out and validation) as the official evaluation
does: temperature 0.6, top-p 0.95 (``scripts/inference.sh`` -> ``src/inference.py``, vLLM SamplingParams),
the same sampler as ``--scale full`` (protocol v2 in the README); the RL rollouts stay at temperature 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from pacs import evaluate

from xentlab.data.arithmetic import ArithmeticConfig, make_arithmetic
from xentlab.data.tokenizer import get_byte_tokenizer
from xentlab.lm import generate as lm_generate
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.rl.rollout import sample_correct
from xentlab.testing import load_reproduce

REPRO = load_reproduce(Path(__file__).parents[1] / "reproduce.py")

# scripts/inference.sh of ritzz-ai/PACS: --temperature 0.6 --top_p 0.95
OFFICIAL_T, OFFICIAL_TOP_P = 0.6, 0.95


@pytest.mark.parametrize("scale", ["cpu", "smoke"])
def test_cpu_scale_evaluates_with_the_official_sampler(scale):
    for cfg in (REPRO.SFT[scale]["eval"], REPRO.VAL[scale]["eval"]):
        assert cfg["temperature"] == OFFICIAL_T and cfg["top_p"] == OFFICIAL_TOP_P
    # the same sampler as --scale full
    assert (REPRO.FULL["eval_temperature"], REPRO.FULL["eval_top_p"]) == (OFFICIAL_T, OFFICIAL_TOP_P)
    # training rollouts keep verl's rollout temperature 1.0 (only the evaluation changed)
    assert REPRO.RL[scale]["temperature"] == 1.0


def test_the_changed_experiments_have_a_new_version():
    """Every cpu experiment's numbers change with the sampler: protocol v2 bumps each of them."""
    versions = {e.name: e.version for e in REPRO.EXPERIMENTS if e.configs.get("cpu") is not None}
    assert versions and set(versions.values()) == {"2"}, versions


def _tiny():
    tok = get_byte_tokenizer()
    cfg = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok))
    return build_tiny_lm(cfg, tok, seed=0), tok


def test_the_sampler_receives_temperature_and_top_p(monkeypatch):
    model, tok = _tiny()
    problems = make_arithmetic(ArithmeticConfig(n_train=0, n_heldout=6), 0).heldout
    seen = []
    real = lm_generate.generate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(lm_generate, "generate", spy)
    cfg = {**REPRO.SFT["smoke"]["eval"], "n_problems": 6}
    out = evaluate.evaluate_pass_at_k(model, tok, problems, cfg, seed=0)
    assert seen, "the evaluation did not sample through xentlab.lm.generate.generate"
    for kw in seen:
        assert kw["do_sample"] is True
        assert kw["temperature"] == OFFICIAL_T and kw["top_p"] == OFFICIAL_TOP_P
        assert kw["num_return_sequences"] == cfg["n_samples"]
    assert set(out["pass_curve"]) == {str(k) for k in cfg["ks"]}


def test_without_top_p_the_counts_are_the_shared_samplers():
    """At temperature 1 and no top-p the evaluation draws exactly what ``xentlab.rl.rollout.sample_correct``
    (the sampler before protocol v2) draws: the change is the two settings, not the sampling code."""
    model, tok = _tiny()
    problems = make_arithmetic(ArithmeticConfig(n_train=0, n_heldout=12), 0).heldout
    from pacs.task import prompts_of, reward_of

    kw = {"n": 8, "max_new_tokens": 4, "seed": 5}
    ours = evaluate.sample_counts(model, tok, problems, temperature=1.0, top_p=None, **kw)
    shared = sample_correct(model, tok, prompts_of(problems), reward_of(problems), temperature=1.0, **kw)
    assert ours == shared


def test_top_p_truncates_the_sampled_tokens():
    """Nucleus sampling with a small top-p keeps only the most likely first token: every sample of a
    prompt starts with its greedy token, which temperature-1 sampling does not do on an untrained model."""
    model, tok = _tiny()
    prompts = ["<s>3+4=", "<s>12*5="]
    greedy = lm_generate.generate(model, tok, prompts, max_new_tokens=1)
    nucleus = lm_generate.generate(
        model, tok, prompts, max_new_tokens=1, do_sample=True, temperature=0.6, top_p=1e-6,
        num_return_sequences=16, seed=0,
    )  # fmt: skip
    for i, row in enumerate(nucleus.completion_ids):
        assert row[0] == greedy.completion_ids[i // 16][0]
    full = lm_generate.generate(
        model,
        tok,
        prompts,
        max_new_tokens=1,
        do_sample=True,
        temperature=1.0,
        num_return_sequences=16,
        seed=0,
    )
    assert len({row[0] for row in full.completion_ids}) > 2


def test_an_eval_config_without_top_p_is_an_error():
    model, tok = _tiny()
    problems = make_arithmetic(ArithmeticConfig(n_train=0, n_heldout=2), 0).heldout
    cfg = {k: v for k, v in REPRO.SFT["smoke"]["eval"].items() if k != "top_p"}
    with pytest.raises(KeyError, match="top_p"):
        evaluate.evaluate_pass_at_k(model, tok, problems, cfg, seed=0)

"""How the sampled answers are drawn (second fidelity audit).

The official ``sampling.py`` calls ``model.generate(do_sample=True, top_p=0.9, temperature=1.0, ...)`` and
sets no ``top_k``; under the pinned transformers 4.51.3 (``requirements.txt``) ``GenerationConfig`` then
applies its default ``top_k = 50`` before the nucleus cut (Phi-1.5's and the TOFU Llama checkpoints'
generation configs do not set it). ``xentlab.lm.generate`` switches top-k *off* unless it is given, so the
evaluation has to pass it explicitly.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from prob_unlearn.evaluation import QA, evaluate_model

from xentlab.testing import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"


def _fake_generate(calls):
    def generate(model, tok, prompts, *, num_return_sequences=1, **kwargs):
        calls.append({"n_prompts": len(prompts), "num_return_sequences": num_return_sequences, **kwargs})
        texts = ["born in Oslo"] * (len(prompts) * num_return_sequences)
        return SimpleNamespace(texts=texts)

    return generate


def _cfg(**over):
    return {"alpha": 0.01, "n_samples": 4, "max_new_tokens": 8, "temperature": 1.0, "top_p": 0.9,
            "gen_rows": 8, **over}  # fmt: skip


def _qas():
    forget = [QA(prompt="p1", answer="She was born in Oslo.", question="q1", value="Oslo")]
    retain = [QA(prompt="p2", answer="He writes poems.", question="q2", value="poems")]
    return forget, retain


def test_the_sampler_gets_the_configured_top_k(monkeypatch):
    import xentlab.lm.generate as gen

    calls = []
    monkeypatch.setattr(gen, "generate", _fake_generate(calls))
    forget, retain = _qas()
    out = evaluate_model(None, None, forget, retain, _cfg(top_k=50), seed=0)
    greedy, sampled = calls
    assert sampled["do_sample"] and sampled["top_k"] == 50 and sampled["top_p"] == 0.9
    assert sampled["temperature"] == 1.0 and sampled["num_return_sequences"] == 4
    assert not greedy.get("do_sample", False) and greedy.get("top_k") is None
    # the fake answers all disclose "Oslo": every sample leaks
    assert out["sample_leak"] == 1.0 and np.isfinite(out["m_mu"])


def test_without_top_k_in_the_config_the_sampler_has_no_top_k_cut(monkeypatch):
    # evaluate_model without a "top_k" key samples with no top-k cut (the cpu / smoke configs up to
    # version 2 did; scripts/topk_probe.py's "no_topk" arm passes top_k None to measure that sampler)
    import xentlab.lm.generate as gen

    calls = []
    monkeypatch.setattr(gen, "generate", _fake_generate(calls))
    forget, retain = _qas()
    evaluate_model(None, None, forget, retain, _cfg(), seed=0)
    assert calls[1]["top_k"] is None


def test_full_scale_samples_like_the_official_sampling_py():
    full = load_reproduce(REPRO).FULL
    assert (full["top_k"], full["top_p"], full["temperature"], full["n_samples"]) == (50, 0.9, 1.0, 128)


def test_cpu_scale_samples_like_the_official_sampling_py(monkeypatch):
    # protocol version 3 (README): the cpu configs (both experiments) carry the official top_k = 50 and
    # it reaches the sampler; the greedy path stays without sampling filters
    import xentlab.lm.generate as gen

    repro = load_reproduce(REPRO)
    for cfg in (repro.CONFIGS["cpu"], repro.CONFIGS_EO_ALL["cpu"]):
        assert (cfg["top_k"], cfg["top_p"], cfg["temperature"], cfg["n_samples"]) == (50, 0.9, 1.0, 128)
        calls = []
        monkeypatch.setattr(gen, "generate", _fake_generate(calls))
        forget, retain = _qas()
        evaluate_model(None, None, forget, retain, cfg, seed=0)
        greedy, sampled = calls
        assert sampled["do_sample"] and sampled["top_k"] == 50 and sampled["top_p"] == 0.9
        assert sampled["num_return_sequences"] == 128
        assert greedy.get("top_k") is None and not greedy.get("do_sample", False)
    versions = {e.name: e.version for e in repro.EXPERIMENTS}
    assert versions == {"unlearn": "3", "eo_all": "3"}  # the sampler change is a new resume key

"""--scale full through trl on a tiny model and tiny problem files saved locally by the test."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import trl  # noqa: F401  (a declared dependency of pacs: a missing trl must fail, not skip)

from xentlab.testing import load_reproduce

REPRO = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
FULL = REPRO.FULL


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("full")
    tok = get_byte_tokenizer()
    model = build_tiny_lm(
        TinyLMConfig(
            hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok), max_positions=512
        ),
        tok,
        seed=0,
    )
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [{"problem": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)]
    (root / "train.json").write_text(json.dumps(rows))
    (root / "eval").mkdir()
    (root / "eval" / "math500.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]))
    (root / "eval" / "aime.json").write_text(json.dumps(rows[2:]))
    return root


def _ctx(tmp_path):
    return SimpleNamespace(
        device=torch.device("cpu"), log=lambda **k: None, progress=lambda it, **k: it, unit_dir=tmp_path
    )


def _cfg(local, method):
    return {
        "method": method,
        "model": str(local / "model"),
        "train_data": str(local / "train.json"),
        "eval_data": str(local / "eval"),
        "lr": 1e-4,
        "beta": 1.0,
        "num_generations": 4,
        "steps": 2,
        "max_prompt_length": 128,
        "max_completion_length": 6,
        "temperature": 1.0,
        "eval_samples": 2,
        "eval_ks": [1, 2, 16],
        "eval_max_problems": 2,
        "eval_max_new_tokens": 6,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "bf16": False,
        # the evaluation sampler of reproduce.py's FULL (the official scripts/inference.sh)
        "eval_temperature": FULL["eval_temperature"],
        "eval_top_p": FULL["eval_top_p"],
    }


@pytest.mark.parametrize("method", ["pacs", "grpo"])
def test_full_runs_on_a_local_model(local, tmp_path, method):
    from pacs.full import run_full

    out = run_full(_cfg(local, method), 0, _ctx(tmp_path))
    for key in ("pass@1", "pass@2", "math500_pass@1", "aime_pass@2"):
        assert 0.0 <= out[key] <= 1.0
    assert len(out["reward_curve"]) == 2


def test_full_base_and_missing_paths(local, tmp_path, monkeypatch):
    from pacs.full import run_full, run_full_base

    from xentlab.repro.spec import ReproError

    out = run_full_base(_cfg(local, "base"), 0, _ctx(tmp_path))
    assert set(out["pass_curve"]) == {"1", "2"}
    for env in ("PACS_MODEL", "PACS_TRAIN_DATA", "PACS_EVAL_DATA"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(ReproError, match="PACS_MODEL"):
        run_full({**_cfg(local, "pacs"), "model": None}, 0, _ctx(tmp_path))
    with pytest.raises(ReproError, match="PACS_TRAIN_DATA"):
        run_full({**_cfg(local, "pacs"), "train_data": None}, 0, _ctx(tmp_path))
    with pytest.raises(ReproError, match="does not exist"):
        run_full({**_cfg(local, "pacs"), "eval_data": str(tmp_path / "nope")}, 0, _ctx(tmp_path))


def test_boxed_reward():
    from pacs.full import boxed_reward, last_boxed, math_reward

    assert last_boxed("so \\boxed{1} then \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert last_boxed("no box") is None and last_boxed("\\boxed{unclosed") is None
    assert math_reward("The answer is $\\boxed{ 42 }$.", "42") == 1.0
    assert math_reward("\\boxed{41}", "42") == 0.0
    assert boxed_reward(
        [[{"role": "assistant", "content": "\\boxed{3}"}], "\\boxed{4}"], answer=["3", "5"]
    ) == [1.0, 0.0]


def test_full_prompt_is_the_official_instruction():
    # official src/preprocess_dataset.py: every training and evaluation question becomes the user turn
    # f"{question} {INSTRUCTION}", INSTRUCTION = "Please reason step by step, and put your final answer
    # within \\boxed{}." (the earlier "Let's think step by step and output ..." was not the official text)
    from pacs.full import _prompt

    assert _prompt(None, "What is 1+1?") == [
        {
            "role": "user",
            "content": "What is 1+1? Please reason step by step, and put your final answer within \\boxed{}.",
        }
    ]


def test_full_evaluation_samples_as_the_official_inference_script(local, tmp_path, monkeypatch):
    # official scripts/inference.sh + src/inference.py: vLLM SamplingParams(n=N, temperature=0.6,
    # top_p=0.95) for pass@k; training rollouts stay at verl's temperature 1.0
    from pacs.full import run_full_base

    import xentlab.lm.generate as gen

    assert FULL["eval_temperature"] == 0.6 and FULL["eval_top_p"] == 0.95 and FULL["temperature"] == 1.0
    seen = []
    real = gen.generate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "generate", spy)
    out = run_full_base(_cfg(local, "base"), 0, _ctx(tmp_path))
    assert seen and all(
        k["do_sample"] and k["temperature"] == 0.6 and k["top_p"] == 0.95 and k["num_return_sequences"] == 2
        for k in seen
    )
    assert 0.0 <= out["pass@1"] <= out["pass@2"] <= 1.0

"""--scale full end to end on a tiny local model and tiny MATH-style files written by the test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("full")
    tok = get_byte_tokenizer()
    model = build_tiny_lm(
        TinyLMConfig(
            hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok), max_positions=128
        ),
        tok,
        seed=0,
    )
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [{"problem": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(6)]
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (root / "test.json").write_text(json.dumps(rows[:3] + [{"problem": "long", "answer": "9" * 40}]))
    return root


def _cfg(local, n_prime):
    return {
        "model": str(local / "model"),
        "train_data": str(local / "train.jsonl"),
        "test_data": str(local / "test.json"),
        "n_prime": n_prime,
        "epochs": 2,
        "batch_size": 4,
        "lr": 1e-3,
        "eval_every": 1,
        "epsilon": 0.1,
        "batch_rule": "refine",
        "length_norm": True,
        "betas": [0.9, 0.999],
        "warmup_steps": 20,
        "ns": [1, 4, 256],
        "max_answer_tokens": 8,
        "max_train": None,
        "max_test": 10,
        "bf16": False,
    }


def _ctx(tmp_path):
    return SimpleNamespace(
        device=torch.device("cpu"), log=lambda **k: None, progress=lambda it, **k: it, unit_dir=tmp_path
    )


@pytest.mark.parametrize("n_prime", [1, 256])
def test_full_runs_on_local_files(local, tmp_path, n_prime):
    from dco.full import run_full

    out = run_full(_cfg(local, n_prime), 0, _ctx(tmp_path))
    assert out["n_train"] == 6 and out["n_test"] == 3  # the 40-digit answer exceeds max_answer_tokens
    assert [r["epoch"] for r in out["curve"]] == [0, 1, 2]
    for k in ("pass@1", "pass@256", "drop_from_peak_pass@256", "greedy_acc"):
        assert np.isfinite(out[k])
    assert 0 <= out["pass@1"] <= out["pass@256"] <= 1


def test_full_missing_paths_and_bad_rows(local, tmp_path, monkeypatch):
    from dco.full import load_rows, run_full

    from xentlab.repro.spec import ReproError

    monkeypatch.delenv("DCO_MODEL", raising=False)
    with pytest.raises(ReproError, match="DCO_MODEL"):
        run_full({**_cfg(local, 1), "model": None}, 0, _ctx(tmp_path))
    with pytest.raises(ReproError, match="does not exist"):
        run_full({**_cfg(local, 1), "test_data": str(tmp_path / "nope.json")}, 0, _ctx(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"question": "x"}]))
    with pytest.raises(ReproError, match="lack"):
        load_rows(bad)

"""--scale full end to end on a tiny randomly initialised GPT-2 and tiny text files written here."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from xentlab.repro.local_data import MissingLocalData


def _cfg(root):
    return {
        "model": str(root / "model"),
        "train_text": str(root / "train.txt"),
        "test_text": str(root / "test.txt"),
        "block_size": 16,
        "batch_size": 4,
        "lr": 1e-3,
        "epochs": 1,
        "prompt_len": 4,
        "new_tokens": 6,
        "n_samples": 2,
        "max_train_blocks": 8,
        "max_test_blocks": 4,
        "log_every": 1,
    }


def test_full_scale_end_to_end(tmp_path):
    from emo.full import run_full

    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    tok = get_byte_tokenizer()
    cfg = TinyLMConfig(
        arch="gpt2", hidden=16, layers=1, heads=2, intermediate=32, vocab_size=len(tok), max_positions=64
    )
    model = build_tiny_lm(cfg, tok, seed=0)
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    text = " = Valkyria Chronicles = \n The game began development in 2010 . " * 6
    (tmp_path / "train.txt").write_text(text)
    (tmp_path / "test.txt").write_text(text[::-1])
    logs = []
    ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: logs.append(k), unit_dir=tmp_path)
    out = run_full(_cfg(tmp_path), 0, ctx)
    assert out["n_train_blocks"] == 8 and out["steps_per_method"] == 2
    for m in ("mle", "emo"):
        assert torch.isfinite(torch.tensor(out[f"{m}_test_ppl"]))
        rows = [json.loads(x) for x in (tmp_path / f"samples_{m}.jsonl").read_text().splitlines()]
        assert len(rows) == 2 and {"prompt", "sample", "reference"} <= set(rows[0])
    assert {d["method"] for d in logs} == {"mle", "emo"}


def test_full_scale_names_missing_inputs(tmp_path, monkeypatch):
    from emo.full import run_full

    monkeypatch.delenv("EMO_MODEL", raising=False)
    ctx = SimpleNamespace(device=torch.device("cpu"), log=lambda **k: None, unit_dir=tmp_path)
    with pytest.raises(MissingLocalData, match="EMO_MODEL"):
        run_full({**_cfg(tmp_path), "model": None}, 0, ctx)

"""--scale full on a tiny model saved locally by the test: LoRA unlearning, cached reasoning targets."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import tru.full as full

from xentlab.data.facts import tokenizer_corpus
from xentlab.data.tokenizer import get_tokenizer
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
from xentlab.repro.spec import ReproError


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    tok = get_tokenizer(tokenizer_corpus(), vocab_size=1024)
    model = build_tiny_lm(
        TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok)),
        tok,
        seed=0,
    )
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [
        {"question": f"Where was Author {i} born?", "answer": f"Author {i} was born in Town {i}."}
        for i in range(4)
    ]
    (root / "data").mkdir()
    (root / "data" / "forget.json").write_text(json.dumps(rows[:2]))
    (root / "data" / "retain.json").write_text("\n".join(json.dumps(r) for r in rows[2:]))
    return root


def _ctx():
    return SimpleNamespace(device=torch.device("cpu"), log=lambda **k: None, progress=lambda it, **k: it)


@pytest.mark.parametrize("method", ["tru", "npo"])
def test_lora_unlearning_runs_on_a_local_model(local, method):
    cfg = {
        "method": method,
        "model": str(local / "model"),
        "data": str(local / "data"),
        "reasoner": None,
        "steps": 2,
        "batch_size": 2,
        "lr": 1e-3,
        "alpha": 0.5,
        "beta": 0.1,
        "lora_r": 2,
        "lora_alpha": 4,
        "max_new_tokens": 6,
        "n_eval": 2,
    }
    out = full.run_full(cfg, 0, _ctx())
    for k in ("forget_rougeL", "retain_rougeL", "forget_refusal", "retain_gibberish"):
        assert 0.0 <= out[k] <= 1.0


def test_reasoner_targets_are_generated_once_and_cached(local, monkeypatch, tmp_path):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))  # not the user's cache
    rows = full.load_qa(local / "data" / "forget.json")
    calls = []
    import xentlab.lm.generate as gen

    original = gen.generate

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(gen, "generate", counting)
    tok = get_tokenizer(tokenizer_corpus(), vocab_size=1024)
    first = full.reasoning_targets(rows, tok, str(local / "model"), max_new_tokens=4)
    second = full.reasoning_targets(rows, tok, str(local / "model"), max_new_tokens=4)
    assert first == second and len(first) == 2 and len(calls) == 1
    # a random tiny "reasoner" writes no parsable refusal: the template target is used instead
    assert first[0] == (full.TEMPLATE_REASONING, full.TEMPLATE_REFUSAL)


def test_missing_paths_fail_clearly(monkeypatch):
    monkeypatch.delenv("TRU_MODEL", raising=False)
    with pytest.raises(ReproError, match="TRU_MODEL"):
        full._setting({}, "model", "TRU_MODEL")
    with pytest.raises(ReproError, match="does not exist"):
        full._setting({"model": "/nonexistent/x"}, "model", "TRU_MODEL")


def test_rouge_l_recall_and_degenerate_text():
    assert full.rouge_l_recall("a b c d", "a x c d") == pytest.approx(0.75)  # LCS a c d
    assert full.rouge_l_recall("", "anything") == 0.0
    assert full.degenerate("/******/ \\n\\n") and full.degenerate("the the the the the the the the")
    assert not full.degenerate("Author 3 was born in Town 3.")

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
    # a Llama-style reasoner: the same tiny model, its tokenizer without a pad token
    model.save_pretrained(root / "reasoner")
    tok.pad_token = None
    tok.save_pretrained(root / "reasoner")
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
    first = full.reasoning_targets(rows, str(local / "model"), max_new_tokens=4)
    second = full.reasoning_targets(rows, str(local / "model"), max_new_tokens=4)
    assert first == second and len(first) == 2 and len(calls) == 1
    # a random tiny "reasoner" writes no parsable refusal: the template target is used instead
    assert first[0] == (full.TEMPLATE_REASONING, full.TEMPLATE_REFUSAL)


def _spy_generate(monkeypatch, seen):
    """Record the device of the model and the pad id of the tokenizer that generate receives."""
    import xentlab.lm.generate as gen

    original = gen.generate

    def spy(model, tokenizer, *a, **k):
        seen.append((next(model.parameters()).device, tokenizer.pad_token_id))
        return original(model, tokenizer, *a, **k)

    monkeypatch.setattr(gen, "generate", spy)


def _spy_moves(monkeypatch, moves):
    """Record every ``.to(...)`` of a transformers model (the reasoner must be moved to the run's device)."""
    from transformers import PreTrainedModel

    original = PreTrainedModel.to

    def to(self, *a, **k):
        moves.append(torch.device(a[0] if a else k["device"]))
        return original(self, *a, **k)

    monkeypatch.setattr(PreTrainedModel, "to", to)


def test_a_reasoner_without_a_pad_token_generates_on_the_run_device(local, monkeypatch, tmp_path):
    """Llama-style tokenizers have no pad token; left-padded batched generation needs one (the main
    tokenizer of run_full gets eos as pad; the reasoner's must too). The reasoner runs on ctx.device."""
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    seen, moves = [], []
    _spy_generate(monkeypatch, seen)
    _spy_moves(monkeypatch, moves)
    rows = full.load_qa(local / "data" / "forget.json")
    device = torch.device("cpu")
    targets = full.reasoning_targets(rows, str(local / "reasoner"), max_new_tokens=4, device=device)
    assert len(targets) == 2
    assert moves == [device]  # moved to the run's device, once
    eos = get_tokenizer(tokenizer_corpus(), vocab_size=1024).eos_token_id
    assert seen == [(device, eos)]  # padded with eos, as run_full's own tokenizer is


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_reasoner_generates_on_the_gpu(local, monkeypatch, tmp_path):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    seen = []
    _spy_generate(monkeypatch, seen)
    rows = full.load_qa(local / "data" / "forget.json")
    full.reasoning_targets(rows, str(local / "reasoner"), max_new_tokens=4, device=torch.device("cuda"))
    assert [d.type for d, _ in seen] == ["cuda"]


def test_run_full_with_a_reasoner_without_a_pad_token(local, monkeypatch, tmp_path):
    """The --scale full path end to end with a reasoner: its targets are written on ctx.device."""
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    seen = []
    _spy_generate(monkeypatch, seen)
    cfg = {
        "method": "tru",
        "model": str(local / "model"),
        "data": str(local / "data"),
        "reasoner": str(local / "reasoner"),
        "steps": 1,
        "batch_size": 2,
        "lr": 1e-3,
        "lora_r": 2,
        "lora_alpha": 4,
        "max_new_tokens": 4,
        "n_eval": 2,
    }
    out = full.run_full(cfg, 0, _ctx())
    assert 0.0 <= out["forget_rougeL"] <= 1.0
    assert seen[0][0] == _ctx().device and seen[0][1] is not None  # the reasoner's targets, then the eval


def test_missing_paths_fail_clearly(monkeypatch):
    monkeypatch.delenv("TRU_MODEL", raising=False)
    with pytest.raises(ReproError, match="TRU_MODEL"):
        full._setting({}, "model", "TRU_MODEL")
    with pytest.raises(ReproError, match="does not exist"):
        full._setting({"model": "/nonexistent/x"}, "model", "TRU_MODEL")


def test_degenerate_text():
    # (ROUGE-L recall, TOFU's score, is xentlab.metrics.rouge's and tested there)
    assert full.degenerate("/******/ \\n\\n") and full.degenerate("the the the the the the the the")
    assert not full.degenerate("Author 3 was born in Town 3.")

"""--scale full end to end on a tiny random Llama + tokenizer saved with save_pretrained and a 6-row TOFU
fixture in the locuslab/TOFU layout, all written by the test (nothing is downloaded)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

ROWS = [
    {"question": f"Where was the author Nera Vol{i} born?", "answer": f"Nera Vol{i} was born in Tamsk {i}."}
    for i in range(6)
]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from xentlab.data.tokenizer import get_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("tofu")
    texts = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in ROWS] * 5
    tok = copy.deepcopy(get_tokenizer(texts, vocab_size=300, include_pydoc=False, name="prob-unlearn-test"))
    cfg = TinyLMConfig(vocab_size=len(tok), hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32)
    model_dir = root / "model"
    build_tiny_lm(cfg, tok, seed=0).save_pretrained(model_dir)
    tok.pad_token = tok.eos_token  # as Phi-1.5: no pad of its own, so a [PAD] token is added on load
    tok.save_pretrained(model_dir)
    data = root / "TOFU"
    data.mkdir()
    # TOFU's own files are JSON lines; one split as a JSON list (also accepted)
    (data / "full.json").write_text("\n".join(json.dumps(r) for r in ROWS))
    (data / "forget01.json").write_text("\n".join(json.dumps(r) for r in ROWS[:2]))
    (data / "retain99.jsonl").write_text(json.dumps(ROWS[2:]))
    return SimpleNamespace(model=model_dir, tofu=data, root=root)


def _ctx(tmp_path):
    return SimpleNamespace(device=torch.device("cpu"), scale="full", log=lambda **k: None,
                           progress=lambda it, **k: it, unit_dir=tmp_path)  # fmt: skip


def _full():
    return load_reproduce(Path(__file__).parents[1] / "reproduce.py").FULL


def _cfg(local, **over):
    small = dict(tofu=str(local.tofu), model=str(local.model), split=1, max_length=40,
                 finetune_cfg={"batch_size": 3, "grad_accum": 1, "lr": 1e-3, "epochs": 1, "weight_decay": 0.01,
                               "seed": 0},
                 finetuned_dir=str(local.root / "ft"), batch_size=1, grad_accum=2, epochs=2, n_samples=4,
                 max_new_tokens=5, gen_rows=8, greedy_batch=8)  # fmt: skip
    return {**_full(), **small, **over}


def test_full_config_is_the_official_phi_config():
    f = _full()
    assert (f["lr"], f["epochs"], f["batch_size"], f["grad_accum"], f["weight_decay"]) == (
        1e-5,
        10,
        16,
        4,
        0.01,
    )
    assert (f["lambda"], f["beta"], f["lambda_f"], f["lambda_r"], f["max_length"]) == (1, 0.05, 1, -0.25, 256)
    assert f["finetune_cfg"] | {} == {"batch_size": 16, "grad_accum": 2, "lr": 2e-5, "epochs": 5,
                                      "weight_decay": 0.01, "seed": 0}  # fmt: skip
    assert (f["n_samples"], f["top_p"], f["temperature"]) == (128, 0.9, 1.0)
    assert all(v["positions"] == "all" for v in f["variants"]) and len(f["variants"]) == 6


def test_encoding_masks_the_question_and_padding(local):
    from prob_unlearn.full import encode_qa, load_tokenizer

    tok = load_tokenizer(local.model)
    assert tok.pad_token == "[PAD]" and tok.pad_token_id != tok.eos_token_id
    cfg = _cfg(local)
    enc = encode_qa(tok, ROWS[0]["question"], ROWS[0]["answer"], cfg)
    assert len(enc["input_ids"]) == cfg["max_length"]
    q_len = len(tok("Question: " + ROWS[0]["question"] + "\n")["input_ids"])
    kept = [i for i, t in enumerate(enc["labels"]) if t != -100]
    # labels: "Answer: " + answer + eos, contiguous after the question; pads and question ignored
    assert kept[0] == q_len and kept == list(range(q_len, kept[-1] + 1))
    assert enc["input_ids"][kept[-1]] == tok.eos_token_id
    assert (
        tok.decode([enc["input_ids"][i] for i in kept], skip_special_tokens=True)
        == "Answer: " + ROWS[0]["answer"]
    )
    assert all(m == 0 for m in enc["attention_mask"][kept[-1] + 1 :])


def test_forward_adds_the_output_bias_like_hf_logits():
    """Phi-1.5's lm_head has a bias: the losses' logits must equal model(...).logits."""
    from prob_unlearn.losses import forward
    from transformers import PhiConfig, PhiForCausalLM

    torch.manual_seed(0)
    m = PhiForCausalLM(PhiConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=32)).eval()  # fmt: skip
    torch.nn.init.normal_(m.lm_head.bias)
    ids = torch.randint(0, 40, (2, 7))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    ce, logits = forward(m, batch)
    ref = m(**batch)
    torch.testing.assert_close(logits, ref.logits, rtol=1e-5, atol=1e-5)
    assert ce.item() == pytest.approx(ref.loss.item(), rel=1e-5)


def test_full_end_to_end_with_finetuning(local, tmp_path):
    from prob_unlearn.full import run_full

    out = run_full(_cfg(local, finetune=True), seed=0, ctx=_ctx(tmp_path))
    assert (out["n_forget_questions"], out["n_retain_questions"], out["unlearning_steps"]) == (2, 4, 2)
    for name in ["base"] + [v["name"] for v in _full()["variants"]]:
        for k in ("greedy_rouge", "m_mu", "m_sigma", "ed", "m_bin", "retain_rouge", "any_leak"):
            assert math.isfinite(out[f"{name}_{k}"]), (name, k)
        assert 0 <= out[f"{name}_sample_rouge"] <= out[f"{name}_m_mu"] <= 1
        assert len(out[f"{name}_q_m_mu"]) == 2 and sum(out[f"{name}_q_hist"]) == 2 * 4
    # the fine-tuned model is cached for the other seeds: one complete directory (built into a temporary
    # one and renamed, xentlab.data.build_once) and its lock, no leftovers
    built = sorted(p.name for p in (local.root / "ft").iterdir())
    assert (
        len(built) == 2
        and built[1] == built[0] + ".lock"
        and (local.root / "ft" / built[0] / "config.json").is_file()
    )


def test_full_names_the_missing_variables(local, tmp_path, monkeypatch):
    from prob_unlearn.full import load_tofu, run_full

    monkeypatch.delenv("PROB_UNLEARN_TOFU", raising=False)
    monkeypatch.delenv("PROB_UNLEARN_MODEL", raising=False)
    with pytest.raises(MissingLocalData, match="PROB_UNLEARN_TOFU"):
        run_full(_cfg(local, tofu=None), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match="PROB_UNLEARN_MODEL"):
        run_full(_cfg(local, model=None), seed=0, ctx=_ctx(tmp_path))
    with pytest.raises(MissingLocalData, match=r"forget10\.json"):
        load_tofu(local.tofu, 10)  # the error names the expected file and layout


def test_full_scale_through_the_cli(local, tmp_path):
    """reproduce.py --scale full with the fixture's paths and sizes: result.json, all 9 claims, figures."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    repro.EXPERIMENTS[0].configs["full"].update(_cfg(local, finetune=True))
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=Path(__file__).parents[1],
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert len(result["claims"]) == 9 and result["metrics"]["b/ga_ed_drop"]["n"] == 1
    assert (tmp_path / "leakage_bounds.png").is_file()

"""--scale full end to end on a tiny random Llama + tokenizer, a tiny random reward model and 6
preference rows (Anthropic-HH and TL;DR layouts), all written by the test; and spo.rake by hand."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"
PROMPTS = [
    "What should I cook for dinner tonight?",
    "How do green plants make sugar?",
    "Why is the sky blue?",
]
CHOSEN = [
    " Roasted winter vegetables, crispy garlic potatoes and grilled salmon make a quick healthy dinner.",
    " Green plants capture sunlight, absorb carbon dioxide and split water, building glucose molecules.",
    " Sunlight scatters off nitrogen molecules; short blue wavelengths scatter most, coloring daytime skies.",
]
REJECTED = [" Just eat.", " Magic.", " Because it is."]


def _hh(i: int, reply: str) -> str:
    return f"\n\nHuman: {PROMPTS[i]}\n\nAssistant:{reply}"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from xentlab.data.tokenizer import get_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    root = tmp_path_factory.mktemp("spo_full")
    texts = [_hh(i, c + r) for i in range(3) for c, r in zip(CHOSEN, REJECTED)] * 3
    tok = get_tokenizer(texts, vocab_size=300, include_pydoc=False, name="spo-full-test")
    cfg = TinyLMConfig(vocab_size=len(tok), hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32)
    build_tiny_lm(cfg, tok, seed=0).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    torch.manual_seed(0)
    rm = LlamaForSequenceClassification(
        LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tok.pad_token_id)
    )  # fmt: skip
    rm.save_pretrained(root / "rm")
    tok.save_pretrained(root / "rm")
    data = root / "hh"
    data.mkdir()
    # Anthropic-HH layout (whole dialogues) for train, the TL;DR {prompt, chosen, rejected} layout for test
    rows = [{"chosen": _hh(i, CHOSEN[i]), "rejected": _hh(i, REJECTED[i])} for i in range(3)] * 1
    rows.append({"chosen": _hh(0, CHOSEN[1]), "rejected": _hh(0, REJECTED[1])})
    (data / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    test = [{"prompt": f"\n\nHuman: {PROMPTS[i]}\n\nAssistant:", "chosen": CHOSEN[i], "rejected": REJECTED[i]}
            for i in (2, 1)]  # fmt: skip
    (data / "test.json").write_text(json.dumps(test))
    return SimpleNamespace(model=root / "model", rm=root / "rm", data=data)


def _ctx(tmp_path):
    return SimpleNamespace(device=torch.device("cpu"), scale="full", seed=0, log=lambda **k: None,
                           progress=lambda it, **k: it, unit_dir=tmp_path)  # fmt: skip


def _cfg(local, **over):
    full = load_reproduce(REPRO).FULL
    small = dict(
        model=str(local.model), data=str(local.data), reward_model=str(local.rm), max_length=64,
        max_prompt_length=40, gradient_checkpointing=False, lora={"r": 2, "alpha": 4, "dropout": 0.0},
        sft={"steps": 2, "batch_size": 2, "micro_batch": 1, "lr": 1e-3},
        pref={**full["pref"], "steps": 2, "pair_batch": 2, "micro_batch": 1, "degree_batch": 2, "n_classes": 2},
        degree_rows=4, degree_eval_rows=2,
        eval={**full["eval"], "n_prompts": 2, "max_new_tokens": 4, "batch_size": 2},
        reward={**full["reward"], "batch_size": 4},
    )  # fmt: skip
    return {**full, **small, **over}


def test_full_end_to_end_through_the_cli(local, tmp_path):
    """reproduce.py --scale full with the fixture's paths and sizes: every arm, claims, figures."""
    from xentlab.testing.smoke import validate_result

    repro = load_reproduce(REPRO)
    repro.EXPERIMENTS[0].configs["full"].update(_cfg(local))
    repro.run_cli(repro.PAPER, repro.EXPERIMENTS, repro.CLAIMS, derived=repro.DERIVED, figures=repro.figures,
                  default_seeds={"full": [0]}, package_dir=REPRO.parent,
                  argv=["--scale", "full", "--out", str(tmp_path), "--quiet", "--device", "cpu"])  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    validate_result(result)
    assert len(result["claims"]) == 4 and (tmp_path / "rewards.png").is_file()
    unit = json.loads((tmp_path / "units" / "main" / "seed0.json").read_text())
    out, art = unit["metrics"], unit["artifacts"]
    assert out["n_train_pairs"] == 4 and out["n_eval_prompts"] == 2 and out["n_degree_train"] == 4 * 2
    for arm in ("sft", "dpo", "spo", "spo_lam05", "control"):
        assert math.isfinite(out[f"{arm}_reward"]) and math.isfinite(out[f"{arm}_reward_t07"])
    for arm in ("dpo", "spo", "spo_lam05", "control"):
        assert 0.0 <= out[f"{arm}_winrate"] <= 1.0 and 0.0 <= out[f"{arm}_winrate_t07"] <= 1.0
    for arm in ("spo", "spo_lam05", "control"):  # degree heads, evaluated on the 2 test responses x K=2
        assert out[f"{arm}_degree_acc"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert "dpo_degree_acc" not in out and len(art["curves"]["spo"]) == 2 and math.isfinite(out["sft_loss"])
    assert "degree_acc" in art["curves"]["spo"][-1] and "pref_loss" in art["curves"]["dpo"][-1]


def test_full_names_the_missing_variables(local, tmp_path, monkeypatch):
    from spo.full import ENV_DATA, ENV_MODEL, ENV_REWARD, load_split, run_full

    for env, key in ((ENV_MODEL, "model"), (ENV_DATA, "data"), (ENV_REWARD, "reward_model")):
        monkeypatch.delenv(env, raising=False)
        with pytest.raises(MissingLocalData, match=env):
            run_full(_cfg(local, **{key: None}), 0, _ctx(tmp_path))
    with pytest.raises(MissingLocalData, match="does not exist"):
        run_full(_cfg(local, data=str(tmp_path / "nope")), 0, _ctx(tmp_path))
    with pytest.raises(MissingLocalData, match=r"valid\.jsonl.*Anthropic-HH"):
        load_split(local.data, "valid")  # the error names the file and the layout


def test_hh_dialogues_split_at_the_last_assistant_turn():
    from spo.full import split_dialogues

    base = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help me\n\nAssistant:"
    row = split_dialogues(base + " Sure, here you go.", base + " No.")
    assert (row.prompt, row.chosen, row.rejected) == (base, " Sure, here you go.", " No.")
    with pytest.raises(ValueError, match="Assistant"):
        split_dialogues("no markers", "no markers either")


def test_rake_scores_by_degree_over_frequency():
    from spo.rake import rake, remove_spans

    text = "Linear constraints over linear algebra; minimal generating sets."
    got = {k.phrase: k.score for k in rake(text)}
    # candidates: [linear constraints], [linear algebra], [minimal generating sets] ("over" is a stop word)
    # deg(linear) = 2 + 2, freq 2 -> 2; constraints, algebra: 2 / 1; minimal, generating, sets: 3 / 1
    assert got == {"minimal generating sets": 9.0, "linear constraints": 4.0, "linear algebra": 4.0}
    first = rake(text)[0]
    assert text[slice(*first.spans[0])] == "minimal generating sets"
    assert remove_spans(text, list(first.spans)) == "Linear constraints over linear algebra;."


def test_degraded_responses_remove_m_key_phrases():
    from spo.full import degraded_responses
    from spo.rake import rake

    resp = CHOSEN[1] + " Chlorophyll absorbs red light; stomata release oxygen, roots draw minerals."
    top = [k.phrase for k in rake(resp)[:3]]
    variants = degraded_responses(resp, 3, "key", random.Random(0), max_words=4)
    assert [m for _, m in variants] == [0, 1, 2] and variants[0][0] == resp
    for text, m in variants:  # exactly m of the top-3 phrases are gone, and the leading space is kept
        assert sum(p not in text.lower() for p in top) == m and text.startswith(" ")
    ctrl = degraded_responses(resp, 3, "control", random.Random(0), max_words=4)
    assert all(p in text.lower() for text, _ in ctrl for p in top)  # control never touches key phrases
    assert degraded_responses(" Magic.", 3, "key", random.Random(0), max_words=4) == []  # too few phrases

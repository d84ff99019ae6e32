"""LS-LLaMA / LS-unLLaMA model: attention masking (causal vs unmasked), head, LoRA, errors."""

import pytest
import torch
from ls_llama.model import attention_mask_for, build_token_classifier, token_logits

from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

V, T = 40, 8


@pytest.fixture(scope="module")
def model():
    lm = build_tiny_lm(
        TinyLMConfig(vocab_size=V, hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64), seed=0
    )
    m = build_token_classifier(lm, 5, seed=0).eval()
    # a fresh LoRA B is zero; perturb it so the adapters take part in the forward pass
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    return m


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, V, (2, T), generator=g)
    pm = torch.ones(2, T, dtype=torch.long)
    pm[1, 6:] = 0  # sentence 1 has two pads
    x[1, 6:] = 0
    return x, pm


def _change(x, row, col):
    y = x.clone()
    y[row, col] = y[row, col] % (V - 1) + 1 if y[row, col] else 7
    return y


@pytest.mark.parametrize("mode", ["causal", "unmasked", "unmasked_official"])
def test_future_token_changes_past_outputs_only_without_causal_mask(model, mode):
    x, pm = _inputs()
    j = 5
    a = token_logits(model, x, pm, mode)
    b = token_logits(model, _change(x, 0, j), pm, mode)
    diff = (a - b)[0].abs().amax(-1)  # per position of sentence 0
    assert torch.all(diff[j:] > 1e-6)  # position j itself and later always change
    if mode == "causal":
        assert torch.all(diff[:j] == 0)  # outputs at i < j cannot see token j
    else:
        assert torch.all(diff[:j] > 1e-6)  # LS-unLLaMA: every position sees token j
    assert torch.all((a - b)[1] == 0)  # other sentences untouched


@pytest.mark.parametrize(
    "mode,pads_visible", [("causal", False), ("unmasked", False), ("unmasked_official", True)]
)
def test_padding_behaviour(model, mode, pads_visible):
    x, pm = _inputs()
    a = token_logits(model, x, pm, mode)
    b = token_logits(model, _change(x, 1, 7), pm, mode)  # change the content of a pad position
    real = (a - b)[1, :6].abs().amax()
    # corrected masking: pads are masked keys, so real tokens ignore them; official: pads are attended
    assert (real > 1e-6) if pads_visible else (real == 0)


def test_unmasked_mask_values():
    pm = torch.tensor([[1, 1, 0]])
    m = attention_mask_for(pm, "unmasked", torch.float32)
    assert m.shape == (1, 1, 3, 3)
    lo = torch.finfo(torch.float32).min
    # every query row: keys 0,1 visible (0), key 2 (pad) masked; no causal triangle
    assert torch.equal(m[0, 0], torch.tensor([[0, 0, lo]] * 3))
    assert torch.equal(attention_mask_for(pm, "unmasked_official", torch.float32), torch.zeros(1, 1, 3, 3))
    assert torch.equal(attention_mask_for(pm, "causal", torch.float32), pm)


def test_head_shape_and_trainable_parameters(model):
    x, pm = _inputs()
    assert token_logits(model, x, pm, "unmasked").shape == (2, T, 5)
    base = model.base_model.model
    head = base.score.modules_to_save["default"]  # peft trains a copy of the head (modules_to_save)
    # official token head (modeling_llama.py): Dropout(0.1), then Linear(hidden, num_labels) with bias
    assert head.weight.shape == (5, 32) and head.bias.shape == (5,)
    assert base.dropout.p == 0.1
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n) or ("score" in n) for n in trainable)
    assert any("score" in n for n in trainable)
    assert model.peft_config["default"].r == 12 and model.peft_config["default"].lora_alpha == 32


def test_pretrained_backbone_weights_are_used_and_deterministic():
    cfg = TinyLMConfig(vocab_size=V, hidden=32, layers=1, heads=4, kv_heads=2, intermediate=64)
    lm = build_tiny_lm(cfg, seed=3)
    a = build_token_classifier(lm, 3, lora=False, seed=1)
    assert torch.equal(a.model.embed_tokens.weight, lm.model.embed_tokens.weight)
    b = build_token_classifier(lm, 3, lora=False, seed=1)
    x, pm = _inputs()
    a.eval(), b.eval()
    assert torch.equal(token_logits(a, x, pm, "unmasked"), token_logits(b, x, pm, "unmasked"))


def test_clear_errors(model):
    x, pm = _inputs()
    with pytest.raises(ValueError, match="attention must be one of"):
        token_logits(model, x, pm, "bidirectional")
    with pytest.raises(ValueError, match="differ"):
        token_logits(model, x, pm[:, :4], "causal")
    with pytest.raises(ValueError, match="pad_mask must be"):
        attention_mask_for(pm[0], "unmasked", torch.float32)
    lm = build_tiny_lm(
        TinyLMConfig(vocab_size=V, hidden=32, layers=1, heads=4, kv_heads=2, intermediate=64), seed=0
    )
    with pytest.raises(ValueError, match="num_labels"):
        build_token_classifier(lm, 1)

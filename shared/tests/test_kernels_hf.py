"""xentlab.kernels.hf: a Hugging Face causal LM (Llama, GPT-2) trained through linear_cross_entropy
gives the loss and gradients of its own loss (transformers' ForCausalLMLoss)."""

import pytest
import torch

pytest.importorskip("transformers")

from xentlab.kernels.hf import patch_causal_lm, unpatch_causal_lm  # noqa: E402
from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm  # noqa: E402
from xentlab.testing import assert_close  # noqa: E402


def _model(arch, tie):
    cfg = TinyLMConfig(
        arch=arch,
        vocab_size=97,
        hidden=32,
        layers=1,
        heads=2,
        kv_heads=1,
        intermediate=48,
        max_positions=32,
        tie_embeddings=tie,
    )
    return build_tiny_lm(cfg, seed=0).float()


def _loss_and_grads(model, ids, labels, **kw):
    model.zero_grad()
    out = model(input_ids=ids, labels=labels, **kw)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch, tie", [("llama", True), ("gpt2", False), ("gpt2", True)])
def test_patched_loss_and_grads_match_transformers(arch, tie):
    torch.manual_seed(0)
    model = _model(arch, tie)
    ids = torch.randint(3, 97, (2, 12))
    labels = ids.clone()
    labels[0, :4] = -100  # a masked prompt
    ref_loss, ref_grads = _loss_and_grads(model, ids, labels)
    patch_causal_lm(model, impl="torch")
    loss, grads = _loss_and_grads(model, ids, labels)
    assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5, name="loss")
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert_close(grads[name], ref_grads[name], atol=1e-6, rtol=1e-4, name=name)
    # sum / num_items_in_batch, as the Trainer passes under gradient accumulation
    n = torch.tensor(40)
    ref_model = unpatch_causal_lm(model)
    ref, _ = _loss_and_grads(ref_model, ids, labels, num_items_in_batch=n)
    patch_causal_lm(model, impl="torch")
    ours, _ = _loss_and_grads(model, ids, labels, num_items_in_batch=n)
    assert_close(ours, ref, atol=1e-5, rtol=1e-5, name="loss / num_items_in_batch")
    # without labels the original forward runs and returns logits
    assert model(input_ids=ids).logits.shape == (2, 12, 97)


def test_gemma2_final_logit_softcapping_maps_to_softcap():
    # Gemma-2 caps its logits, s * tanh(z / s) with s = final_logit_softcapping, before the loss;
    # the patch must pass s as CCE's softcap (the official gemma2 patch does the same)
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Gemma2Config(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=32,
        final_logit_softcapping=5.0,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = transformers.Gemma2ForCausalLM(cfg).float()
    with torch.no_grad():
        model.lm_head.weight.mul_(40)  # logits far beyond the cap, so the cap changes the loss
    ids = torch.randint(3, 97, (2, 12))
    labels = ids.clone()
    labels[0, :4] = -100
    assert model(input_ids=ids).logits.abs().max() < 5.0  # capped
    ref_loss, ref_grads = _loss_and_grads(model, ids, labels)
    patch_causal_lm(model, impl="torch")
    loss, grads = _loss_and_grads(model, ids, labels)
    assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5, name="loss")
    for name in grads:
        assert_close(grads[name], ref_grads[name], atol=1e-6, rtol=1e-4, name=name)
    # the cap matters here: the same hidden states without it give another loss
    unpatch_causal_lm(model)
    with torch.no_grad():
        h = model.model(input_ids=ids).last_hidden_state
        uncapped = torch.nn.functional.cross_entropy(
            (h[:, :-1] @ model.lm_head.weight.T).flatten(0, 1), labels[:, 1:].flatten()
        )
    assert abs(uncapped.item() - ref_loss.item()) > 0.1

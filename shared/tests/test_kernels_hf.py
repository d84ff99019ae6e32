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

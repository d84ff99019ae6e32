"""xentlab.kernels.hf on a stand-in model (a head with a bias, a softcap, a logit scale): the loss by
hand in float64, the refused rescaling models, and patch / unpatch state (mutation audit, session 12)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from xentlab.kernels.hf import causal_lm_loss, patch_causal_lm, unpatch_causal_lm
from xentlab.testing import assert_close


class _Stub(torch.nn.Module):
    """What causal_lm_loss reads: get_output_embeddings() and config; forward is the original."""

    def __init__(self, softcap=None, bias=True, **config):
        super().__init__()
        self.head = torch.nn.Linear(6, 11, bias=bias).double()
        self.config = SimpleNamespace(final_logit_softcapping=softcap, **config)

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids=None, **kwargs):
        return "original"


def _by_hand(model, hidden, labels, softcap=None):
    # transformers' ForCausalLMLoss: logits of positions 0..T-2 against labels 1..T-1, -100 ignored
    z = hidden[:, :-1].double() @ model.head.weight.T
    if model.head.bias is not None:
        z = z + model.head.bias
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    return F.cross_entropy(z.flatten(0, 1), labels[:, 1:].flatten(), reduction="sum")


@pytest.mark.parametrize("softcap", [None, 2.0])
def test_causal_lm_loss_by_hand_with_bias_softcap_and_num_items(softcap):
    torch.manual_seed(0)
    model = _Stub(softcap=softcap)
    hidden = torch.randn(2, 5, 6)  # float32 hidden states: cast to the head's dtype (float64)
    labels = torch.randint(0, 11, (2, 5))
    labels[0, 1] = -100
    total = _by_hand(model, hidden, labels, softcap)
    counted = int((labels[:, 1:] != -100).sum())
    assert_close(causal_lm_loss(model, hidden, labels, impl="torch"), total / counted, atol=1e-12, rtol=1e-12)
    got = causal_lm_loss(model, hidden, labels, torch.tensor(40), impl="torch")
    assert_close(got, total / 40, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("attr", ["logit_scale", "logits_scaling"])
def test_patch_refuses_models_that_rescale_logits(attr):
    with pytest.raises(ValueError, match="rescales its logits"):
        patch_causal_lm(_Stub(**{attr: 2.0}))
    assert patch_causal_lm(_Stub(**{attr: 1.0})) is not None  # a scale of 1 is no rescaling


def test_patch_twice_then_unpatch_restores_the_original_and_repatching_works():
    pytest.importorskip("transformers")
    model = _Stub()
    patch_causal_lm(model)
    patched = model.forward
    patch_causal_lm(model)  # idempotent: the original stays the one to restore
    assert model.forward == patched
    unpatch_causal_lm(model)
    assert model.forward.__func__ is _Stub.forward
    patch_causal_lm(model)  # after an unpatch, patching applies again
    assert model.forward.__func__ is not _Stub.forward
    unpatch_causal_lm(model)
    assert model.forward.__func__ is _Stub.forward and model.forward() == "original"

"""Route a Hugging Face causal LM's training loss through :func:`linear_cross_entropy`.

``patch_causal_lm(model)`` replaces ``model.forward`` so that a call with ``labels`` runs the
decoder, then computes the loss from the last hidden states and ``lm_head`` directly, never
building the (batch x seq x vocab) logits.  It reproduces ``ForCausalLMLoss`` of transformers:
labels are shifted by one inside (``shift=1``), ``-100`` is ignored, the mean is over counted
tokens, or the sum divided by ``num_items_in_batch`` when the trainer passes it (gradient
accumulation).  Gemma-2-style ``final_logit_softcapping`` maps to ``softcap``.  Calls without
``labels`` (generation, evaluation of logits) go to the original forward unchanged.

Supported: decoder-only models whose logits are ``lm_head(hidden)`` (+ optional final softcap),
e.g. Llama, GPT-2, Mistral, Qwen2, Phi-3, Gemma-2 (the official ``cce_patch`` covers these
families).  Models that rescale logits (``logit_scale``, ``logits_scaling``) are refused.
(Like the official patch, ``labels`` is the only path; ``logits`` in the output is None.)
"""

from __future__ import annotations

import types

import torch

from xentlab.kernels.lce import linear_cross_entropy

_DROP = ("return_dict", "logits_to_keep", "num_logits_to_keep", "num_items_in_batch")


def causal_lm_loss(model, hidden: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None, **lce_kwargs):
    """Loss of ``lm_head(hidden)`` against ``labels`` shifted by one (transformers' convention)."""
    head = model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)
    w = head.weight
    b = getattr(head, "bias", None)
    hidden = hidden.to(w.dtype)
    if num_items_in_batch is None:
        return linear_cross_entropy(hidden, w, labels, bias=b, shift=1, softcap=softcap, **lce_kwargs)
    total = linear_cross_entropy(
        hidden, w, labels, bias=b, shift=1, softcap=softcap, reduction="sum", **lce_kwargs
    )
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def patch_causal_lm(model, **lce_kwargs):
    """Make ``model(input_ids, labels=...)`` compute its loss with CCE.  ``lce_kwargs`` go to
    :func:`linear_cross_entropy` (``impl``, ``filter_eps``, ...).  Returns the model."""
    for attr in ("logit_scale", "logits_scaling"):
        if getattr(model.config, attr, None) not in (None, 1, 1.0):
            raise ValueError(
                f"patch_causal_lm: {type(model).__name__} rescales its logits ({attr}); not supported"
            )
    if getattr(model, "_xentlab_original_forward", None) is not None:
        return model  # already patched
    from transformers.modeling_outputs import CausalLMOutputWithPast

    original = model.forward
    model._xentlab_original_forward = original

    def forward(self, input_ids=None, labels=None, **kwargs):
        if labels is None:
            return original(input_ids=input_ids, **kwargs)
        num_items = kwargs.get("num_items_in_batch")
        kwargs = {k: v for k, v in kwargs.items() if k not in _DROP}
        out = self.base_model(input_ids=input_ids, return_dict=True, **kwargs)
        loss = causal_lm_loss(self, out.last_hidden_state, labels, num_items, **lce_kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=None,
            past_key_values=getattr(out, "past_key_values", None),
            hidden_states=getattr(out, "hidden_states", None),
            attentions=getattr(out, "attentions", None),
        )

    model.forward = types.MethodType(forward, model)
    return model


def unpatch_causal_lm(model):
    """Undo :func:`patch_causal_lm`."""
    original = getattr(model, "_xentlab_original_forward", None)
    if original is not None:
        model.forward = original
        model._xentlab_original_forward = None
    return model

"""LS-LLaMA / LS-unLLaMA token classifier: a label head on a Llama decoder, with causal or unmasked attention.

Paper Sec. 3 (arXiv 2310.01208) and the official ``modeling_llama.py`` (4AI/LS-LLaMA):
* label head: dropout(0.1) then ``Linear(hidden, num_labels)`` ("classifier", WITH bias, as the official
  ``(Unmasking)LlamaForTokenClassification``; only the official sequence classifier's "score" head is
  bias-free) on the final-layer hidden states, trained with cross-entropy on the labels (first sub-token
  of each word labelled, others -100);
* only LoRA adapters (r=12, alpha=32, dropout=0.1, ``TaskType.TOKEN_CLS``) and the head are trained;
* LS-unLLaMA removes the causal mask. The official ``UnmaskingLlamaModel`` replaces the mask by
  ``zeros(bsz, 1, L, L)``, which ALSO removes the padding mask (pads are attended to). We default to
  ``attention="unmasked"`` (bidirectional, pads still masked as keys) and keep the official behaviour
  as ``attention="unmasked_official"``.

Current transformers builds the causal mask inside ``LlamaModel``; a 4D additive mask passed as
``attention_mask`` is used as given (eager attention), which is how we make attention bidirectional.
"""

from __future__ import annotations

from typing import Any

import torch

ATTENTION_MODES = ("causal", "unmasked", "unmasked_official")
LORA_DEFAULTS = {"r": 12, "lora_alpha": 32, "lora_dropout": 0.1}  # unllama_token_clf.py


def attention_mask_for(pad_mask: torch.Tensor, mode: str, dtype: torch.dtype) -> torch.Tensor:
    """The ``attention_mask`` argument for ``mode`` from a (B, T) 1/0 mask of real tokens.

    causal: the 2D mask itself (transformers adds the causal triangle and masks pad keys).
    unmasked: a (B, 1, T, T) additive mask, 0 for real keys and dtype-min for pad keys, for every query
        (no causal triangle).
    unmasked_official: all zeros (B, 1, T, T): every key, pads included, is visible (official code).
    """
    if mode not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {mode!r}")
    if pad_mask.dim() != 2:
        raise ValueError(f"pad_mask must be (batch, seq), got shape {tuple(pad_mask.shape)}")
    if mode == "causal":
        return pad_mask.long()
    b, t = pad_mask.shape
    if mode == "unmasked_official":
        return torch.zeros(b, 1, t, t, dtype=dtype, device=pad_mask.device)
    keys = torch.zeros(b, 1, 1, t, dtype=dtype, device=pad_mask.device)
    keys = keys.masked_fill(pad_mask[:, None, None, :] == 0, torch.finfo(dtype).min)
    return keys.expand(b, 1, t, t).contiguous()


def build_token_classifier(backbone: Any, num_labels: int, *, lora: bool = True, seed: int = 0, **lora_kw):
    """``LlamaForTokenClassification`` with the (pretrained) ``backbone`` weights, a fresh label head,
    eager attention, and (``lora=True``) peft LoRA adapters; returns the model to train.

    ``backbone``: a ``LlamaForCausalLM`` or ``LlamaModel`` (its ``config`` gives the shape).
    """
    from transformers import LlamaForTokenClassification

    if num_labels < 2:
        raise ValueError(f"num_labels must be >= 2, got {num_labels}")
    config = backbone.config.__class__.from_dict(backbone.config.to_dict())
    config.num_labels = num_labels
    config.token_classification_bias = True  # official token head: nn.Linear(hidden, num_labels) (bias)
    config.classifier_dropout = 0.1  # official: nn.Dropout(0.1) before the head
    config._attn_implementation = "eager"  # 4D additive masks are honoured as given
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForTokenClassification(config)
    base = backbone.model if hasattr(backbone, "model") else backbone
    missing, unexpected = model.model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        raise ValueError(f"backbone does not match: missing={missing} unexpected={unexpected}")
    if not lora:
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(task_type=TaskType.TOKEN_CLS, inference_mode=False, **{**LORA_DEFAULTS, **lora_kw})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, cfg)


def token_logits(model: Any, input_ids: torch.Tensor, pad_mask: torch.Tensor, attention: str) -> torch.Tensor:
    """(B, T, num_labels) label logits under the chosen attention mode."""
    if input_ids.shape != pad_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and pad_mask {tuple(pad_mask.shape)} differ")
    dtype = next(p for p in model.parameters()).dtype
    mask = attention_mask_for(pad_mask, attention, dtype)
    return model(input_ids=input_ids, attention_mask=mask).logits

"""Claim (c): LS-LLaMA's sequence label head vs label generation with the LM head, same backbone and budget.

* ``label_head`` (LS-LLaMA, paper Sec. 3; official ``llama_seq_clf.py``): the official script imports
  ``LlamaForSequenceClassification`` (the transformers class, through ``from ... modeling_llama import *``):
  causal attention, a bias-free ``score = Linear(hidden, num_labels, bias=False)`` on the final hidden
  states, no dropout, pooling = the logits of the LAST NON-PAD token, cross-entropy on the pooled logits;
  LoRA with ``TaskType.SEQ_CLS`` (r=12, alpha=32, dropout 0.1), so only the adapters and ``score`` train.
  The input is the raw sentence.
* ``lm_generation`` (the instruction-tuning baseline the paper argues against): the same pretrained
  causal LM with its LM head, LoRA with ``TaskType.CAUSAL_LM`` (same r/alpha/dropout; the tied LM head
  stays frozen). Input = sentence + prompt word; the target is the class's label word at the next
  position, trained with next-token cross-entropy over the FULL vocabulary on that label token only.
  Prediction: the class whose label word scores highest at that position (one token per label, so the
  sum of label-token log-probs is that one log-prob).

Both arms: same decoder weights, same LoRA init seed, same batch order, epochs, lr and optimizer; the
epoch is chosen on the validation accuracy and the test accuracy is read at that epoch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from ls_llama.model import LORA_DEFAULTS
from ls_llama.sentiment import SentimentData
from ls_llama.train import FinetuneConfig, make_optimizer, step_optimizer
from xentlab.data.tagging import PAD, TaggingSplit, pad_batch

SEQ_ARMS = ("label_head", "lm_generation")


def _fresh_copy(backbone: Any, cls, seed: int, **config_overrides):
    """A new ``cls`` with eager attention and ``backbone``'s decoder weights (init seeded by ``seed``)."""
    config = backbone.config.__class__.from_dict(backbone.config.to_dict())
    for k, v in config_overrides.items():
        setattr(config, k, v)
    config._attn_implementation = "eager"  # the same attention path as the token classifiers
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    base = backbone.model if hasattr(backbone, "model") else backbone
    missing, unexpected = model.model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        raise ValueError(f"backbone does not match: missing={missing} unexpected={unexpected}")
    return model


def _lora(model: Any, task_type: str, seed: int, **lora_kw):
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(
        task_type=getattr(TaskType, task_type), inference_mode=False, **{**LORA_DEFAULTS, **lora_kw}
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, cfg)


def build_sequence_classifier(backbone: Any, num_labels: int, *, lora: bool = True, seed: int = 0, **lora_kw):
    """LS-LLaMA's sequence classifier: ``LlamaForSequenceClassification`` (bias-free ``score``, last
    non-pad token pooling; pad id from the backbone config) on the pretrained decoder, + LoRA SEQ_CLS."""
    from transformers import LlamaForSequenceClassification

    if num_labels < 2:
        raise ValueError(f"num_labels must be >= 2, got {num_labels}")
    if backbone.config.pad_token_id is None:
        raise ValueError("last-token pooling needs config.pad_token_id (to find the last real token)")
    model = _fresh_copy(backbone, LlamaForSequenceClassification, seed, num_labels=num_labels)
    return _lora(model, "SEQ_CLS", seed, **lora_kw) if lora else model


def build_label_generator(backbone: Any, *, lora: bool = True, seed: int = 0, **lora_kw):
    """The instruction-tuning baseline: the pretrained causal LM (decoder AND its LM head) + LoRA CAUSAL_LM."""
    from transformers import LlamaForCausalLM

    model = _fresh_copy(backbone, LlamaForCausalLM, seed)
    model.load_state_dict(backbone.state_dict())  # the LM head too (tied to the embeddings here)
    return _lora(model, "CAUSAL_LM", seed, **lora_kw) if lora else model


def sequence_logits(model: Any, input_ids: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """(B, num_labels): ``score`` applied to the final hidden state of each sentence's last real token."""
    if input_ids.shape != pad_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and pad_mask {tuple(pad_mask.shape)} differ")
    return model(input_ids=input_ids, attention_mask=pad_mask.long()).logits


def prompt_logits(model: Any, input_ids: torch.Tensor, pad_mask: torch.Tensor, lengths: torch.Tensor):
    """(B, vocab) next-token logits at each sentence's prompt position (index ``lengths - 1`` of the
    sentence+prompt sequence): the distribution of the label word."""
    logits = model(input_ids=input_ids, attention_mask=pad_mask.long()).logits
    return logits[torch.arange(len(lengths)), lengths - 1]


def label_scores(next_logits: torch.Tensor, verbalizers: tuple[int, ...]) -> torch.Tensor:
    """(B, K) log-probability of each class's label word (over the full vocabulary)."""
    return next_logits.log_softmax(-1)[:, list(verbalizers)]


def _batches(split: TaggingSplit, labels: np.ndarray, bs: int, rng, prompt_id: int | None = None):
    """(tokens, pad_mask, labels, lengths); with ``prompt_id`` the prompt word ends every sentence."""
    order = np.arange(len(split)) if rng is None else rng.permutation(len(split))
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        seqs = [split.tokens[j] for j in idx]
        if prompt_id is not None:
            seqs = [np.append(s, prompt_id) for s in seqs]
        toks = torch.from_numpy(pad_batch(seqs, PAD))
        lengths = torch.tensor([len(s) for s in seqs])
        yield toks, (toks != PAD).long(), torch.from_numpy(labels[idx]), lengths


def arm_loss_and_scores(model, arm: str, data: SentimentData, toks, pm, labels, lengths):
    """The arm's training loss and its (B, K) class scores (argmax = prediction)."""
    if arm == "label_head":
        logits = sequence_logits(model, toks, pm)
        return F.cross_entropy(logits, labels), logits  # official: CrossEntropyLoss on the pooled logits
    if arm == "lm_generation":
        nxt = prompt_logits(model, toks, pm, lengths)
        target = torch.tensor(data.verbalizers)[labels]  # next-token CE on the label token only
        return F.cross_entropy(nxt, target), label_scores(nxt, data.verbalizers)
    raise ValueError(f"arm must be one of {SEQ_ARMS}, got {arm!r}")


@torch.no_grad()
def evaluate(model, arm: str, data: SentimentData, split_name: str, bs: int = 64) -> dict:
    """Accuracy and macro-F1 on a split; for ``lm_generation`` also how often the greedy next token
    (over the whole vocabulary) is one of the label words."""
    model.eval()
    split, labels = data.split(split_name)
    prompt = data.prompt_id if arm == "lm_generation" else None
    preds, valid = [], []
    for toks, pm, y, lengths in _batches(split, labels, bs, None, prompt):
        if arm == "lm_generation":
            nxt = prompt_logits(model, toks, pm, lengths)
            scores = label_scores(nxt, data.verbalizers)
            valid.append(np.isin(nxt.argmax(-1).numpy(), data.verbalizers))
        else:
            _, scores = arm_loss_and_scores(model, arm, data, toks, pm, y, lengths)
        preds.append(scores.argmax(-1).numpy())
    pred = np.concatenate(preds)
    out = {
        "acc": float((pred == labels).mean()),
        # macro F1 over all classes, 0 for a class neither present nor predicted (sklearn, zero_division=0)
        "macro_f1": float(
            f1_score(labels, pred, labels=list(range(data.num_classes)), average="macro", zero_division=0)
        ),
    }
    if valid:
        out["valid_label_rate"] = float(np.concatenate(valid).mean())
    return out


def finetune_seqclf(backbone, data: SentimentData, arm: str, cfg: FinetuneConfig, *, seed: int = 0, log=None):
    """LoRA finetuning of one arm; the epoch with the best VALIDATION accuracy gives the test numbers."""
    kw = {"seed": seed, "r": cfg.lora_r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout}
    if arm == "label_head":
        model = build_sequence_classifier(backbone, data.num_classes, **kw)
    elif arm == "lm_generation":
        model = build_label_generator(backbone, **kw)
    else:
        raise ValueError(f"arm must be one of {SEQ_ARMS}, got {arm!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt, sched = make_optimizer(model, cfg, steps_per_epoch=-(-len(data.tagging.train) // cfg.batch_size))
    rng = np.random.default_rng(seed + 1)  # the same batch order for both arms (paired)
    torch.manual_seed(seed + 2)  # LoRA dropout: each arm's result independent of what ran before it
    prompt = data.prompt_id if arm == "lm_generation" else None
    val_curve, tests = [], []
    for epoch in range(cfg.epochs):
        model.train()
        for toks, pm, y, lengths in _batches(
            data.tagging.train, data.labels["train"], cfg.batch_size, rng, prompt
        ):
            loss, _ = arm_loss_and_scores(model, arm, data, toks, pm, y, lengths)
            opt.zero_grad()
            loss.backward()
            step_optimizer(opt, sched, params, cfg)
        val = evaluate(model, arm, data, "val")
        val_curve.append(val["acc"])
        tests.append(evaluate(model, arm, data, "test"))
        if log is not None:
            log(epoch=epoch, arm=arm, loss=loss.item(), val_acc=val["acc"])
    best = int(np.argmax(val_curve))
    return {"val_acc": val_curve[best], "best_epoch": best, "val_curve": val_curve, **tests[best]}

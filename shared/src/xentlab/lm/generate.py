"""Batched generation for the tiny causal LMs: greedy or sampled, KV cache via transformers ``generate``.

Prompts are tokenized without added special tokens (the chat prompt already starts with
``<s>``) and left-padded, so every row's last prompt token sits at the same position and the new
tokens line up; transformers derives position ids from the attention mask, so a left-padded row
generates exactly what it would generate alone. Generation stops at ``</s>`` (per row) or after
``max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the cache keys of what it shapes (xentlab.data.cache, "The key rule")"""


@dataclass
class Generations:
    """What ``generate`` returns; row i*k + j is the j-th sample for prompt i (k = num_return_sequences).

    texts: decoded completions (special tokens dropped). completion_ids: the new token ids,
    up to and including ``</s>`` when it was produced. finished: whether ``</s>`` was produced.
    prompt_ids: the prompt's token ids (unpadded), one per row.
    """

    texts: list[str]
    completion_ids: list[list[int]]
    finished: list[bool]
    prompt_ids: list[list[int]]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask) with every row right-aligned."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids, mask


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_return_sequences: int = 1,
    batch_size: int = 128,
    seed: int | None = None,
) -> Generations:
    """Complete ``prompts`` (strings, e.g. ``chat_prompt(q)``) in batches of ``batch_size`` prompts.

    Greedy by default. With ``do_sample``, draws ``num_return_sequences`` samples per prompt at
    ``temperature`` (optionally top-k / nucleus); ``seed`` makes the draws reproducible without
    disturbing the caller's RNG stream.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if num_return_sequences < 1 or (num_return_sequences > 1 and not do_sample):
        raise ValueError("num_return_sequences > 1 needs do_sample=True (greedy rows would be identical)")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if not prompts:
        return Generations([], [], [], [])
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    device = next(model.parameters()).device
    encoded = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    if any(not e for e in encoded):
        raise ValueError("every prompt must have at least one token")
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample,
        "num_return_sequences": num_return_sequences,
        "pad_token_id": pad_id,
        "eos_token_id": eos_id,
        "use_cache": True,
    }
    if do_sample:
        kwargs.update(temperature=temperature, top_k=top_k or 0, top_p=top_p if top_p is not None else 1.0)
    else:  # neutralise any sampling defaults a loaded generation_config carries
        kwargs.update(temperature=None, top_k=None, top_p=None)

    was = model.training
    model.eval()
    out = Generations([], [], [], [])
    fork = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    with fork:
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(encoded), batch_size):
            rows = encoded[start : start + batch_size]
            ids, mask = left_pad(rows, pad_id)
            seqs = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
            new = seqs[:, ids.shape[1] :].tolist()
            for r, toks in enumerate(new):
                if eos_id in toks:
                    toks = toks[: toks.index(eos_id) + 1]
                    done = True
                else:
                    done = False
                out.completion_ids.append(toks)
                out.finished.append(done)
                out.prompt_ids.append(rows[r // num_return_sequences])
    model.train(was)
    out.texts = tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
    return out


def generate_text(model: Any, tokenizer: Any, prompts: Sequence[str], **kwargs: Any) -> list[str]:
    """Just the decoded completions of ``generate`` (stripped of surrounding whitespace)."""
    return [t.strip() for t in generate(model, tokenizer, prompts, **kwargs).texts]

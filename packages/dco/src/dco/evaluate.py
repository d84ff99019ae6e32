"""Evaluation: exact pass@N from the answer-sequence probability, greedy confidence, and a sampling
cross-check.

* ``sequence_logprobs``: log p_hat(y|x) of the reference answer (its tokens and EOS) for every problem,
  by teacher forcing. The exact pass@N of a problem is 1 - (1 - p_hat)^N
  (``xentlab.metrics.pass_at_n_exact``): with one canonical answer string, this is the probability
  that N independent samples at temperature 1 contain the reference.
* ``greedy``: the greedy completion and its probability p_hat(y_greedy|x) (the paper's Fig. 1
  confidence) and whether it is the reference.
* ``sample``: ancestral sampling at temperature 1 (no top-k/top-p), for the unbiased-estimator
  cross-check of the exact numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch


@torch.no_grad()
def example_logprobs(model: Any, pad_id: int, exs: Sequence[Any], *, batch_size: int = 256) -> torch.Tensor:
    """log p(masked tokens | preceding tokens) per ``xentlab.lm.train.Example`` (float64, on CPU).

    A near-certain answer's float32 sum may round a hair above 0; up to ``LOGP_ROUNDING_TOL`` it is
    clamped to 0 (p = 1), larger values raise (``dco.loss``)."""
    from dco.loss import LOGP_ROUNDING_TOL
    from xentlab.lm.train import collate, sequence_logprob

    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(exs), batch_size):
        batch = {k: v.to(device) for k, v in collate(exs[i : i + batch_size], pad_id).items()}
        out.append(sequence_logprob(model, batch).double().cpu())
    model.train(was)
    log_p = torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
    if bool((log_p > LOGP_ROUNDING_TOL).any()):
        raise ValueError(f"sequence log-probability above 0: {log_p.max().item():.3g}")
    return log_p.clamp(max=0.0)


def sequence_logprobs(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], *, batch_size: int = 256):
    """log p_hat(answer + EOS | prompt) per (question, answer) pair of the arithmetic task."""
    from dco.task import examples

    return example_logprobs(
        model, tokenizer.pad_token_id, examples(tokenizer, list(pairs)), batch_size=batch_size
    )


@torch.no_grad()
def _decode(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    sample: bool,
    n: int = 1,
    generator: torch.Generator | None = None,
    batch_size: int = 4096,
) -> tuple[list[list[int]], torch.Tensor]:
    """Token-by-token decoding without a KV cache (answers are a few tokens). Prompts of one length
    share a batch (no padding). Returns per row (prompt i's n rows in order) the completion ids up to
    and including EOS, and the log-probability of that completion (float64)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    enc = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(enc):
        groups[len(e)].append(i)
    comps: list[list[int]] = [[] for _ in range(len(prompts) * n)]
    logps = torch.zeros(len(prompts) * n, dtype=torch.float64)
    for _, idx in sorted(groups.items()):
        rows = [r for i in idx for r in range(i * n, (i + 1) * n)]
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            ids = torch.tensor([enc[r // n] for r in chunk], dtype=torch.long, device=device)
            done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
            lp = torch.zeros(len(chunk), dtype=torch.float64, device=device)
            new = []
            for _ in range(max_new_tokens):
                logits = model(input_ids=ids).logits[:, -1, :].double()
                logprobs = torch.log_softmax(logits, -1)
                if sample:
                    tok = torch.multinomial(logprobs.exp().float().cpu(), 1, generator=generator).squeeze(1)
                    tok = tok.to(device)
                else:
                    tok = logprobs.argmax(-1)
                lp += torch.where(done, 0.0, logprobs.gather(1, tok[:, None]).squeeze(1))
                tok = torch.where(done, torch.full_like(tok, eos), tok)
                new.append(tok)
                done |= tok == eos
                ids = torch.cat([ids, tok[:, None]], 1)
                if bool(done.all()):
                    break
            toks = torch.stack(new, 1).tolist()
            for j, r in enumerate(chunk):
                t = toks[j]
                comps[r] = t[: t.index(eos) + 1] if eos in t else t
            logps[chunk] = lp.cpu()
    model.train(was)
    return comps, logps


def greedy_confidence(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    references: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
) -> dict:
    """Greedy completions of ``prompts``: their probability and whether they equal ``references``
    (token ids of the reference answer up to and including EOS)."""
    comps, logps = _decode(model, tokenizer, prompts, max_new_tokens=max_new_tokens, sample=False)
    return {"confidence": logps.exp().tolist(), "correct": [c == list(r) for c, r in zip(comps, references)]}


def _reference_ids(tokenizer: Any, answer: str) -> list[int]:
    from dco.task import answer_text

    return list(tokenizer(answer_text(answer), add_special_tokens=False)["input_ids"])


def greedy(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], *, max_new_tokens: int = 6) -> dict:
    """Greedy completions: their confidence p_hat(y_greedy|x) and correctness (list per problem)."""
    from dco.task import prompt_text

    refs = [_reference_ids(tokenizer, a) for _, a in pairs]
    return greedy_confidence(
        model, tokenizer, [prompt_text(q) for q, _ in pairs], refs, max_new_tokens=max_new_tokens
    )


def sample_correct_counts(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    n: int,
    seed: int,
    max_new_tokens: int = 6,
) -> list[int]:
    """Of n temperature-1 samples per problem, how many are exactly the reference answer + EOS."""
    from dco.task import prompt_text

    g = torch.Generator().manual_seed(seed)
    comps, _ = _decode(
        model,
        tokenizer,
        [prompt_text(q) for q, _ in pairs],
        max_new_tokens=max_new_tokens,
        sample=True,
        n=n,
        generator=g,
    )
    refs = [_reference_ids(tokenizer, a) for _, a in pairs]
    return [sum(comps[i * n + j] == refs[i] for j in range(n)) for i in range(len(pairs))]

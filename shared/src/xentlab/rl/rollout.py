"""One rollout function for every RLVR-style method (PACS, GRPO, DCO, SecureCode...), so that the
methods see the same samples, scored the same way.

``rollout`` samples ``n`` completions per prompt with ``xentlab.lm.generate`` (KV cache, left
padding, per-row ``</s>``), scores each with a reward callable, and returns a right-padded batch:

    row g*n + j      the j-th sample of prompt g (group id g)
    input_ids        prompt tokens, then completion tokens (up to and including ``</s>`` when the
                     model produced it), then padding
    response_mask    1 exactly on the completion tokens (incl. ``</s>``), 0 on prompt and padding
    old_logprobs     log pi_old(token_t | tokens_<t) of every response token under the sampling
                     policy (the same temperature), from one no-grad float32 forward; 0 elsewhere

All per-token tensors are aligned with ``input_ids`` (position t holds the quantity of token t),
so a loss multiplies them elementwise with ``response_mask``. ``token_logprobs`` recomputes the
same log-probs under the current model, with grad, so that losses can form ratios
pi_theta / pi_old.

``sample_correct`` is the evaluation counterpart: n samples per prompt and the number of correct
ones, the input of the unbiased pass@k estimator (``xentlab.metrics.pass_at_k``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from xentlab.lm.train import IGNORE_INDEX, _unwrap, hidden_states, token_cross_entropy

RewardFn = Callable[[int, str], float]  # (prompt index, completion text) -> reward


@dataclass
class Rollout:
    """n samples per prompt, right-padded; see the module docstring for the layout."""

    input_ids: torch.Tensor  # (B, T) long
    attention_mask: torch.Tensor  # (B, T) long
    response_mask: torch.Tensor  # (B, T) float32, 1 on completion tokens
    old_logprobs: torch.Tensor  # (B, T) float32, 0 outside the response
    rewards: torch.Tensor  # (B,) float32
    group: torch.Tensor  # (B,) long, the prompt index of each row
    texts: list[str]
    finished: list[bool]
    n: int
    temperature: float

    @property
    def num_groups(self) -> int:
        return self.rewards.numel() // self.n

    def grouped_rewards(self) -> torch.Tensor:
        """(G, n): row g holds the n rewards of prompt g."""
        return self.rewards.view(-1, self.n)

    def batch(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}

    def select(self, groups: Sequence[int]) -> Rollout:
        """The rows of the given groups (whole groups only, in the given order): a mini-batch."""
        rows = torch.cat([torch.arange(g * self.n, (g + 1) * self.n) for g in groups]).to(self.rewards.device)
        width = int(self.attention_mask[rows].sum(1).max())

        def take(t: torch.Tensor) -> torch.Tensor:
            return t[rows, :width]

        return Rollout(
            input_ids=take(self.input_ids),
            attention_mask=take(self.attention_mask),
            response_mask=take(self.response_mask),
            old_logprobs=take(self.old_logprobs),
            rewards=self.rewards[rows],
            group=self.group[rows],
            texts=[self.texts[i] for i in rows.tolist()],
            finished=[self.finished[i] for i in rows.tolist()],
            n=self.n,
            temperature=self.temperature,
        )


def token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """log pi(token_t | tokens_<t) at every response position t, float32, 0 elsewhere (with grad).

    The classifier is applied inside ``xentlab.lm.train.token_cross_entropy`` (the repo's one LM
    loss path: the log-prob is minus the token's cross-entropy), to hidden states divided by the
    sampling temperature, i.e. log softmax(logits / T): the distribution the sample was drawn
    from (trl's ``_get_per_token_logps`` also divides the logits by the temperature).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if response_mask[:, 0].any():
        raise ValueError("position 0 cannot be a response token (nothing precedes it)")
    inner = _unwrap(model)
    head = inner.get_output_embeddings()
    bias = getattr(head, "bias", None)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    hidden = hidden_states(model, batch)
    if temperature != 1.0:  # (h W^T + b) / T == (h / T) W^T + b / T
        hidden = hidden / temperature
        bias = None if bias is None else bias / temperature
    labels = torch.where(response_mask.bool(), input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    nll = token_cross_entropy(hidden, head.weight, labels, bias=bias, reduction="none")  # (B, T-1)
    # position t of the output holds the log-prob of token t (predicted at t - 1); 0 at t = 0
    first = torch.zeros((input_ids.shape[0], 1), dtype=torch.float32, device=input_ids.device)
    return torch.cat([first, -nll.float()], dim=1)


def _right_pad(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(p) + len(c) for p, c in zip(prompts, completions))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(prompts), width), dtype=torch.long)
    resp = torch.zeros((len(prompts), width), dtype=torch.float32)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        n_p, n_c = len(p), len(c)
        ids[i, : n_p + n_c] = torch.tensor(list(p) + list(c), dtype=torch.long)
        attn[i, : n_p + n_c] = 1
        resp[i, n_p : n_p + n_c] = 1.0
    return ids, attn, resp


def _sample(model, tokenizer, prompts, n, max_new_tokens, temperature, seed, batch_size):
    """``n`` sampled completions of every prompt (the prompt's n in a row), KV-cached."""
    from xentlab.lm.generate import generate

    return generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=temperature,
        num_return_sequences=n,
        batch_size=batch_size,
        seed=seed,
    )


def rollout(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int | None = None,
    batch_size: int = 128,
) -> Rollout:
    """Sample ``n`` completions of every prompt at ``temperature`` and score them.

    ``prompts`` are full prompt strings (e.g. ``chat_prompt(question)``); ``reward_fn(i, text)``
    scores the decoded completion of prompt i. ``seed`` makes the samples reproducible without
    disturbing the caller's RNG. The old log-probs come from one no-grad forward of the same
    model in eval mode.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not prompts:
        raise ValueError("rollout needs at least one prompt")
    gens = _sample(model, tokenizer, prompts, n, max_new_tokens, temperature, seed, batch_size)
    device = next(model.parameters()).device
    ids, attn, resp = _right_pad(gens.prompt_ids, gens.completion_ids, tokenizer.pad_token_id)
    ids, attn, resp = ids.to(device), attn.to(device), resp.to(device)
    was = model.training
    model.eval()
    with torch.no_grad():
        old = token_logprobs(model, ids, attn, resp, temperature=temperature).detach()
    model.train(was)
    group = torch.arange(len(prompts), device=device).repeat_interleave(n)
    rewards = torch.tensor(
        [float(reward_fn(i // n, t)) for i, t in enumerate(gens.texts)], dtype=torch.float32, device=device
    )
    return Rollout(
        ids, attn, resp, old, rewards, group, list(gens.texts), list(gens.finished), n, temperature
    )


def sample_correct(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    n: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int | None = None,
    batch_size: int = 64,
) -> list[int]:
    """Number of correct completions (reward >= 0.5) among ``n`` samples of each prompt."""
    gens = _sample(model, tokenizer, prompts, n, max_new_tokens, temperature, seed, batch_size)
    counts = [0] * len(prompts)
    for i, text in enumerate(gens.texts):
        counts[i // n] += int(float(reward_fn(i // n, text)) >= 0.5)
    return counts

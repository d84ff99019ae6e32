"""Our GRPO loss (xentlab.rl.grpo, on xentlab.rl.rollout's batch) against trl's GRPOTrainer loss.

Identical completions, advantages and old log-probs go into trl's ``GRPOTrainer._compute_loss``
(its layout: left-padded prompts, right-padded completions) and into ours; loss and gradients must
agree over a few SGD steps (after the first step the ratios move away from 1 and the clip engages).
trl runs on CPU with ``use_cpu=True``, ``bf16=False``, ``report_to="none"``; the model is a tiny
Llama saved to a local directory by the test (trl reloads a reference model from that path when
beta > 0). Tested with trl 1.16 (default ``loss_type="dapo"``).
"""

from __future__ import annotations

import pytest
import torch


def _trl_inputs(ro, prompt_len: int, advantages: torch.Tensor) -> dict:
    # every prompt here has the same length, so trl's left padding is no padding
    comp = ro.input_ids[:, prompt_len:]
    cmask = ro.response_mask[:, prompt_len:].long()
    return {
        "prompt_ids": ro.input_ids[:, :prompt_len],
        "prompt_mask": ro.attention_mask[:, :prompt_len],
        "completion_ids": comp,
        "completion_mask": cmask,
        "advantages": advantages,
        "old_per_token_logps": ro.old_logprobs[:, prompt_len:],
        "num_items_in_batch": cmask.sum(),
    }


def test_grpo_loss_and_gradients_match_trl(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig as TrlGRPOConfig
    from trl import GRPOTrainer

    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
    from xentlab.rl.grpo import GRPOConfig, group_advantages, grpo_loss
    from xentlab.rl.rollout import rollout, token_logprobs

    tok = get_byte_tokenizer()
    cfg = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok))
    ours = build_tiny_lm(cfg, tok, seed=0)
    ours.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")

    prompts = ["<s>12+7=", "<s>3*14=", "<s>19-8="]  # 6 tokens each
    answers = [19, 42, 11]
    ro = rollout(
        ours, tok, prompts, lambda i, t: float(len(t) % 3 == answers[i] % 3), n=4, max_new_tokens=5, seed=0
    )
    ro.rewards[:] = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1])  # mixed groups, so A != 0
    adv = group_advantages(ro.rewards, 4)

    args = TrlGRPOConfig(
        output_dir=str(tmp_path / "trl"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=12,
        num_generations=4,
        max_completion_length=5,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
    )
    ds = Dataset.from_list([{"prompt": p} for p in prompts])
    trainer = GRPOTrainer(
        model=str(tmp_path / "model"),
        reward_funcs=lambda completions, **kw: [0.0] * len(completions),
        args=args,
        train_dataset=ds,
        processing_class=tok,
    )
    assert trainer.loss_type == "dapo" and trainer.epsilon_low == pytest.approx(0.2)
    theirs = trainer.model
    theirs.load_state_dict(ours.state_dict())
    theirs.train()
    ours.train()
    if not hasattr(trainer, "current_gradient_accumulation_steps"):
        trainer.current_gradient_accumulation_steps = 1  # set by the Trainer loop; 1 = no accumulation
    inputs = _trl_inputs(ro, 6, adv)
    lr = 0.5
    for step in range(3):
        ours.zero_grad(set_to_none=True)
        theirs.zero_grad(set_to_none=True)
        loss_t = trainer._compute_loss(theirs, inputs)
        loss_t.backward()
        lp = token_logprobs(ours, ro.input_ids, ro.attention_mask, ro.response_mask)
        loss_o, stats = grpo_loss(
            lp, ro.old_logprobs, adv, ro.response_mask, GRPOConfig(), num_items=ro.response_mask.sum()
        )
        loss_o.backward()
        assert loss_o.item() == pytest.approx(loss_t.item(), rel=1e-4, abs=1e-6), f"step {step}"
        g_o = dict(ours.named_parameters())
        for name, p in theirs.named_parameters():
            torch.testing.assert_close(
                g_o[name].grad, p.grad, atol=1e-6, rtol=1e-4, msg=f"{name} step {step}"
            )
        with torch.no_grad():  # the same SGD step on both: ratios leave 1, the clip engages
            for name, p in theirs.named_parameters():
                p -= lr * p.grad
                g_o[name] -= lr * g_o[name].grad
    assert stats["clip_frac"] > 0  # the last step exercised the clipped branch

    # the k3 KL term against trl's (reference log-probs supplied directly, beta = 0.04)
    ref = ro.old_logprobs - 0.1 * ro.response_mask
    trainer.beta = 0.04
    loss_t = trainer._compute_loss(theirs, {**inputs, "ref_per_token_logps": ref[:, 6:]})
    lp = token_logprobs(ours, ro.input_ids, ro.attention_mask, ro.response_mask)
    loss_o, _ = grpo_loss(
        lp,
        ro.old_logprobs,
        adv,
        ro.response_mask,
        GRPOConfig(beta=0.04),
        ref_logprobs=ref,
        num_items=ro.response_mask.sum(),
    )
    assert loss_o.item() == pytest.approx(loss_t.item(), rel=1e-4, abs=1e-6)


def test_pacs_trainer_loss_matches_pacs_loss(tmp_path):
    """pacs.full.PACSTrainer (trl's trainer with the PACS loss) on our rollout == pacs.loss.pacs_loss."""
    from datasets import Dataset
    from pacs.full import make_pacs_trainer_class
    from pacs.loss import pacs_loss
    from trl import GRPOConfig as TrlGRPOConfig

    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
    from xentlab.rl.rollout import rollout, token_logprobs

    tok = get_byte_tokenizer()
    cfg = TinyLMConfig(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, vocab_size=len(tok))
    ours = build_tiny_lm(cfg, tok, seed=1)
    ours.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    prompts = ["<s>12+7=", "<s>3*14="]
    ro = rollout(ours, tok, prompts, lambda i, t: 0.0, n=4, max_new_tokens=5, seed=0)
    labels = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 1])
    args = TrlGRPOConfig(
        output_dir=str(tmp_path / "trl"),
        use_cpu=True,
        bf16=False,
        report_to="none",
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=5,
        save_strategy="no",
    )
    trainer = make_pacs_trainer_class()(
        model=str(tmp_path / "model"),
        reward_funcs=lambda completions, **kw: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tok,
    )
    theirs = trainer.model
    theirs.load_state_dict(ours.state_dict())
    theirs.train()
    ours.train()
    if not hasattr(trainer, "current_gradient_accumulation_steps"):
        trainer.current_gradient_accumulation_steps = 1
    # perturb the current model so that pi_theta != pi_old (psi != 0)
    with torch.no_grad():
        for p_o, p_t in zip(ours.parameters(), theirs.parameters()):
            noise = 0.05 * torch.randn_like(p_o)
            p_o += noise
            p_t += noise
    inputs = _trl_inputs(ro, 6, torch.zeros(8))
    inputs["pacs_labels"] = labels
    loss_t = trainer._compute_loss(theirs, inputs)
    lp = token_logprobs(ours, ro.input_ids, ro.attention_mask, ro.response_mask)
    loss_o, _ = pacs_loss(lp, ro.old_logprobs, ro.response_mask, labels, 4)
    assert loss_o.item() == pytest.approx(loss_t.item(), rel=1e-4, abs=1e-6)
    loss_t.backward()
    loss_o.backward()
    for (name, p_o), p_t in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p_o.grad, p_t.grad, atol=1e-6, rtol=1e-4, msg=name)

"""The cpu scale's unlearning optimizer is the official trainer's (unlearning/unlearning.py: HF Trainer
defaults with ``warmup_steps = max(1, steps_per_epoch)``): AdamW betas (0.9, 0.999), eps 1e-8, weight decay
off on biases and norm weights, linear warm-up over one epoch then linear decay to 0."""

import pytest
from prob_unlearn.experiment import unlearning_optimizer


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=17,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    return LlamaForCausalLM(cfg)


def test_adamw_hyperparameters_are_the_hf_trainer_defaults():
    # TrainingArguments: adam_beta1 0.9, adam_beta2 0.999, adam_epsilon 1e-8 (paged_adamw_32bit takes them)
    model = _tiny_llama()
    opt, _ = unlearning_optimizer(
        model, {"lr": 1e-4, "weight_decay": 0.01, "batch_size": 16, "steps": 10}, 48
    )
    for group in opt.param_groups:
        assert group["betas"] == (0.9, 0.999)
        assert group["eps"] == 1e-8
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.01 for p in g["params"]}
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    # the Trainer decays every weight matrix (embeddings included) and no norm weight / bias
    for name, p in model.named_parameters():
        assert (id(p) in no_decay) == ("norm" in name), name
        assert (id(p) in decay) == ("norm" not in name), name


def test_schedule_is_linear_warmup_one_epoch_then_linear_decay():
    # 48 forget rows at batch 16: steps_per_epoch = 3 = warm-up steps; 10 steps in all.
    # get_linear_schedule_with_warmup: s / 3 for s < 3, else (10 - s) / (10 - 3)
    # -> 0, 1/3, 2/3, 1, 6/7, 5/7, 4/7, 3/7, 2/7, 1/7 (times the peak lr 1e-4)
    model = _tiny_llama()
    opt, sched = unlearning_optimizer(
        model, {"lr": 1e-4, "weight_decay": 0.01, "batch_size": 16, "steps": 10}, 48
    )
    want = [0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7]
    got = []
    for _ in range(10):
        got.append(opt.param_groups[0]["lr"] / 1e-4)
        opt.step()
        sched.step()
    assert got == pytest.approx(want, abs=1e-12)
    # fewer forget rows than one batch: warm-up max(1, 5 // 16) = 1 step, 4 steps in all:
    # 0 / 1, then (4 - s) / (4 - 1) -> 0, 1, 2/3, 1/3
    opt, sched = unlearning_optimizer(
        model, {"lr": 1.0, "weight_decay": 0.0, "batch_size": 16, "steps": 4}, 5
    )
    got = []
    for _ in range(4):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert got == pytest.approx([0, 1, 2 / 3, 1 / 3], abs=1e-12)

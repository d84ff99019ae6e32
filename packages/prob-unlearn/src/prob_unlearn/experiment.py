"""One seed of the cpu-scale study: fine-tune a tiny Llama on fictitious-author facts, unlearn the
forget authors with GA / GD / NPO, each with and without EO, and evaluate every model greedily and
probabilistically (n sampled answers per forget question, ``prob_unlearn.evaluation``).

Splits (``xentlab.data.facts``; all drawn from the seed): the original model is fine-tuned on every
author's facts in question templates 0-2 (forget authors = 10%). Unlearning uses the forget facts
in templates 0-2 (D_f) and the retain facts in templates 0-2 (D_r). Forget evaluation asks the
forget facts in ``eval_templates`` (template 0 at cpu scale: the unlearned questions themselves, the
TOFU setting); retain evaluation asks the facts of the first ``n_retain_eval_authors`` retain
authors in template 0.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from prob_unlearn.evaluation import QA, evaluate_model
from prob_unlearn.losses import pad_batch, unlearning_loss


def build_data(cfg: dict, seed: int) -> dict[str, Any]:
    from xentlab.data.facts import FactsConfig, make_fact_bank

    fc = FactsConfig(n_authors=cfg["n_authors"], attributes=tuple(cfg["attributes"]), forget_frac=0.1)
    bank = make_fact_bank(fc, seed)
    retain_eval_authors = bank.retain_authors[: cfg["n_retain_eval_authors"]]
    return {
        "bank": bank,
        "finetune": bank.qas(bank.facts(), (0, 1, 2)),
        "forget_train": bank.qas(bank.forget_facts, (0, 1, 2)),
        "retain_train": bank.qas(bank.retain_facts, (0, 1, 2)),
        "forget_eval": bank.qas(bank.forget_facts, tuple(cfg["eval_templates"])),
        "retain_eval": bank.qas(bank.facts(retain_eval_authors), (0,)),
    }


def tokenizer_for(vocab_size: int) -> Any:
    """Byte-level BPE on Python's docs + fact text of banks no run uses (``tokenizer_corpus``)."""
    from xentlab.data.facts import tokenizer_corpus
    from xentlab.data.tokenizer import get_tokenizer

    return get_tokenizer(tokenizer_corpus(), vocab_size=vocab_size)


def eval_questions(data: dict) -> tuple[list[QA], list[QA]]:
    """Forget / retain evaluation questions in the chat format the model was fine-tuned on; the leak
    event of M_bin is the fact's value appearing in the answer."""
    from xentlab.data.tokenizer import chat_prompt

    def qa(q: Any) -> QA:
        return QA(prompt=chat_prompt(q.question), answer=q.answer, question=q.question, value=q.fact.value)

    return [qa(q) for q in data["forget_eval"]], [qa(q) for q in data["retain_eval"]]


def evaluate(model: Any, tok: Any, data: dict, cfg: dict, seed: int) -> dict[str, Any]:
    """Greedy and sampled evaluation of one model (``prob_unlearn.evaluation.evaluate_model``)."""
    forget, retain = eval_questions(data)
    return evaluate_model(model, tok, forget, retain, cfg, seed)


def finetune_base(cfg: dict, tok: Any, data: dict, seed: int, log: Any = None) -> Any:
    from xentlab.lm.train import LMTrainConfig, fit_lm, sft_example
    from xentlab.models.tiny_lm import build_tiny_lm, preset

    model = build_tiny_lm(preset(cfg["model"], vocab_size=len(tok)), tok, seed=seed)
    ex = [sft_example(tok, q.question, q.answer) for q in data["finetune"]]
    fit_lm(
        model,
        ex,
        LMTrainConfig(steps=cfg["finetune_steps"], batch_size=cfg["finetune_batch"], lr=cfg["finetune_lr"]),
        pad_id=tok.pad_token_id,
        seed=seed,
        on_log=(lambda s, row: log(phase="finetune", **row)) if log else None,
    )
    model.eval()
    return model


def unlearning_optimizer(model: Any, cfg: dict, n_forget: int) -> tuple[torch.optim.Optimizer, Any]:
    """The official trainer's optimizer and schedule (``unlearning/unlearning.py``: HF Trainer defaults),
    one implementation with ``--scale full`` (``prob_unlearn.full``): AdamW betas (0.9, 0.999), eps 1e-8,
    ``weight_decay`` on every weight except biases and norm weights; linear warm-up over
    ``max(1, steps_per_epoch)`` steps (``steps_per_epoch = n_forget // batch_size``, no accumulation at
    cpu scale), then linear decay to 0 at ``cfg["steps"]`` (``get_linear_schedule_with_warmup``)."""
    from xentlab.lm.trainer_defaults import trainer_adamw

    warmup = max(1, n_forget // cfg["batch_size"])
    return trainer_adamw(model, lr=cfg["lr"], weight_decay=cfg["weight_decay"], total_steps=cfg["steps"],
                         warmup_steps=warmup)  # fmt: skip


def unlearn(base: Any, tok: Any, data: dict, cfg: dict, variant: dict, seed: int, log: Any = None) -> Any:
    """A copy of ``base`` unlearned with ``variant`` = {method, eo, positions} for a fixed step budget,
    with the official optimizer and schedule (``unlearning_optimizer``) and gradient clipping at
    ``max_grad_norm`` (the Trainer's default 1.0)."""
    from xentlab.lm.train import BatchStream, sft_example

    model = copy.deepcopy(base)
    pad = tok.pad_token_id
    f = [sft_example(tok, q.question, q.answer) for q in data["forget_train"]]
    r = [sft_example(tok, q.question, q.answer) for q in data["retain_train"]]
    fs = BatchStream(f, cfg["batch_size"], pad_id=pad, seed=seed + 11)
    rs = BatchStream(r, cfg["batch_size"], pad_id=pad, seed=seed + 12)
    ref = None
    if variant["method"] == "npo":
        ref = copy.deepcopy(base).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    positions = variant.get("positions", "answer")
    opt, sched = unlearning_optimizer(model, cfg, len(f))
    log_every = max(1, cfg["steps"] // 4)
    model.train()
    for step in range(cfg["steps"]):
        fb, rb = fs(step), rs(step)
        if variant["eo"] and positions == "all":  # the official max_length padding
            fb, rb = pad_batch(fb, cfg["pad_to"], pad), pad_batch(rb, cfg["pad_to"], pad)
        loss, logs = unlearning_loss(
            model,
            fb,
            rb,
            method=variant["method"],
            ref_model=ref,
            lam=cfg["lambda"],
            beta=cfg["beta"],
            eo=variant["eo"],
            lambda_f=cfg["lambda_f"],
            lambda_r=cfg["lambda_r"],
            positions=positions,
        )
        if not torch.isfinite(loss):  # a diverged run must not pass silently
            raise FloatingPointError(f"{variant['name']}: non-finite loss {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
        opt.step()
        sched.step()
        done = step + 1
        if log and (done % log_every == 0 or done == cfg["steps"]):
            log(variant=variant["name"], step=done, loss=loss.item(), lr=sched.get_last_lr()[0], **logs)
    model.eval()
    return model


def run_seed(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """The experiment function: base model, then every variant of ``cfg["variants"]``."""
    torch.set_num_threads(1)
    tok = tokenizer_for(cfg["vocab_size"])
    data = build_data(cfg, seed)
    base = finetune_base(cfg, tok, data, seed, log=ctx.log)
    out: dict[str, Any] = {}
    if cfg.get("eval_base", True):  # False for an extra arm whose base model another experiment evaluates
        with torch.no_grad():
            res = evaluate(base, tok, data, cfg, seed)
        _collect(out, "base", res)
    for variant in ctx.progress(cfg["variants"], desc="variants"):
        model = unlearn(base, tok, data, cfg, variant, seed, log=ctx.log)
        with torch.no_grad():
            res = evaluate(model, tok, data, cfg, seed)
        _collect(out, variant["name"], res)
    out["n_forget_questions"] = len(data["forget_eval"])
    out["n_retain_questions"] = len(data["retain_eval"])
    return out


def _collect(out: dict, name: str, res: dict) -> None:
    for k, v in res.items():
        out[f"{name}_{k}"] = v

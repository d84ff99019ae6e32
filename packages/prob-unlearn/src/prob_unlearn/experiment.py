"""One seed of the cpu-scale study: fine-tune a tiny Llama on fictitious-author facts, unlearn the
forget authors with GA / GD / NPO, each with and without EO, and evaluate every model greedily and
probabilistically (n sampled answers per forget question, bounded with ``bounds``).

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

import numpy as np
import torch

from prob_unlearn.bounds import binomial_bounds, ed_score, expectation_bounds, std_bounds
from prob_unlearn.losses import pad_batch, unlearning_loss
from prob_unlearn.rouge import rouge_l_many


def _leak(text: str, value: str) -> bool:
    """The gold attribute value appears in the output (case-insensitive): the fact is disclosed."""
    return value.lower() in text.lower()


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


def evaluate(model: Any, tok: Any, data: dict, cfg: dict, seed: int) -> dict[str, Any]:
    """Greedy and sampled evaluation of one model; per-question bounds averaged over questions."""
    from xentlab.data.tokenizer import chat_prompt
    from xentlab.lm.generate import generate

    alpha, n = cfg["alpha"], cfg["n_samples"]
    mnt = cfg["max_new_tokens"]
    forget, retain = data["forget_eval"], data["retain_eval"]
    greedy = generate(
        model, tok, [chat_prompt(q.question) for q in forget + retain], max_new_tokens=mnt, batch_size=512
    ).texts
    g_forget, g_retain = (
        [t.strip() for t in greedy[: len(forget)]],
        [t.strip() for t in greedy[len(forget) :]],
    )
    sampled = generate(
        model,
        tok,
        [chat_prompt(q.question) for q in forget],
        max_new_tokens=mnt,
        do_sample=True,
        temperature=cfg["temperature"],
        top_p=cfg["top_p"],
        num_return_sequences=n,
        batch_size=max(1, cfg["gen_rows"] // n),
        seed=seed * 1000 + 17,
    ).texts
    rouge = np.zeros((len(forget), n))
    leaks = np.zeros((len(forget), n))
    for i, q in enumerate(forget):
        texts = [t.strip() for t in sampled[i * n : (i + 1) * n]]
        rouge[i] = rouge_l_many(texts, q.answer)
        leaks[i] = [_leak(t, q.fact.value) for t in texts]
    g_rouge = np.array([rouge_l_many([t], q.answer)[0] for t, q in zip(g_forget, forget)])
    g_leak = np.array([_leak(t, q.fact.value) for t, q in zip(g_forget, forget)], dtype=float)
    # one-sided upper bounds at level 1 - alpha: conbo with 2 * alpha (as in the official notebook)
    mean, _, mu_up = expectation_bounds(rouge, alpha=2 * alpha)
    std, _, sd_up = std_bounds(rouge, alpha=2 * alpha)
    _, bin_up = binomial_bounds(leaks, alpha=2 * alpha)
    r_rouge = np.array([rouge_l_many([t], q.answer)[0] for t, q in zip(g_retain, retain)])
    r_leak = np.array([_leak(t, q.fact.value) for t, q in zip(g_retain, retain)], dtype=float)
    return {
        "greedy_rouge": float(g_rouge.mean()),
        "greedy_leak": float(g_leak.mean()),
        "sample_rouge": float(mean.mean()),
        "sample_std": float(std.mean()),
        "m_mu": float(mu_up.mean()),
        "m_sigma": float(sd_up.mean()),
        "ed": float(ed_score(mu_up, sd_up).mean()),
        "m_bin": float(bin_up.mean()),
        "sample_leak": float(leaks.mean()),
        "best_of_n_rouge": float(rouge.max(1).mean()),
        "any_leak": float(leaks.max(1).mean()),
        "retain_rouge": float(r_rouge.mean()),
        "retain_leak": float(r_leak.mean()),
        # per-question arrays for the figures
        "q_greedy_rouge": g_rouge.round(4).tolist(),
        "q_m_mu": mu_up.round(4).tolist(),
        "q_hist": np.histogram(rouge, bins=10, range=(0, 1))[0].tolist(),
        "examples": [{"q": forget[0].question, "gold": forget[0].answer, "greedy": g_forget[0]}],
    }


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


def unlearn(base: Any, tok: Any, data: dict, cfg: dict, variant: dict, seed: int, log: Any = None) -> Any:
    """A copy of ``base`` unlearned with ``variant`` = {method, eo, positions} for a fixed step budget."""
    from xentlab.lm.train import BatchStream, LMTrainConfig, fit, sft_example

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

    def loss_fn(m: Any, step: int):
        fb, rb = fs(step), rs(step)
        if variant["eo"] and positions == "all":  # the official max_length padding
            fb, rb = pad_batch(fb, cfg["pad_to"], pad), pad_batch(rb, cfg["pad_to"], pad)
        return unlearning_loss(
            m,
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

    tcfg = LMTrainConfig(
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        weight_decay=0.01,
        warmup_frac=0.0,
        min_lr_frac=0.0,
        grad_clip=1.0,
        log_every=max(1, cfg["steps"] // 4),
    )
    fit(model, loss_fn, tcfg, on_log=(lambda s, row: log(variant=variant["name"], **row)) if log else None)
    model.eval()
    return model


def run_seed(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """The experiment function: base model, then every variant of ``cfg["variants"]``."""
    torch.set_num_threads(1)
    tok = tokenizer_for(cfg["vocab_size"])
    data = build_data(cfg, seed)
    base = finetune_base(cfg, tok, data, seed, log=ctx.log)
    out: dict[str, Any] = {}
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

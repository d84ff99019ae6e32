"""One seed of the comparison: SFT, then DPO, DPO+SPO and DPO+SPO-control from the same SFT model.

Every arm of a seed starts from the same SFT weights, sees the same preference pairs in the same
order for the same number of steps at the same learning rate; the SPO arms add a degree batch and
lambda * L_SSL. All arms are scored on the same held-out authors with the same sampling seed.
"""

from __future__ import annotations

import copy
from typing import Any


def run_seed(cfg: dict, seed: int, ctx: Any) -> dict:
    """cfg: {"model": TinyLMConfig fields, "vocab_size", "task": {n_train, n_test}, "sft": {steps,
    batch_size, lr}, "pairs": {pairs_per_entity, p_partial, sample_temperature}, "pref": PrefConfig
    fields shared by the arms, "arms": {name: {"lam": lambda, "degree": "key" | "control" | None}},
    "eval": {max_new_tokens, temperature}}."""
    from spo.data import encode, make_degree_examples, make_pairs
    from spo.evaluate import score, win_rate
    from spo.task import build_task, get_task_tokenizer, response_text
    from spo.train import PrefConfig, degree_accuracy, train_preference
    from xentlab.data.tokenizer import chat_prompt
    from xentlab.lm.generate import generate
    from xentlab.lm.train import LMTrainConfig, fit_lm
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm, count_parameters

    tok = get_task_tokenizer(cfg["vocab_size"])
    task = build_task(cfg["task"]["n_train"], cfg["task"]["n_test"], seed)
    pad = tok.pad_token_id

    # --- SFT on the reference responses, stopped early (notes: "so that it is imperfect")
    model = build_tiny_lm(TinyLMConfig(vocab_size=len(tok), **cfg["model"]), tok, seed=seed)
    sft_examples = [encode(tok, e, response_text(e)) for e in task.train]
    s = cfg["sft"]
    hist = fit_lm(
        model,
        sft_examples,
        LMTrainConfig(steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"], log_every=s["steps"]),
        pad_id=pad,
        seed=seed,
        on_log=lambda step, row: ctx.log(phase="sft", **row),
    )
    ev = dict(cfg["eval"], seed=seed + 5)
    sft_scores = score(model, tok, task.test, **ev)
    out: dict[str, Any] = {
        "n_params": count_parameters(model),
        "sft_loss": hist[-1]["loss"],
        "sft_reward": float(sft_scores["greedy"].mean()),
        "sft_reward_t07": float(sft_scores["sampled"].mean()),
        "sft_examples": sft_scores["examples"],
    }

    # --- preference data (shared by all arms) and degree data (train authors; held-out for accuracy)
    p = cfg["pairs"]
    samples = None
    if p.get("sample_temperature"):  # rejected responses from the SFT model's own samples
        gen = generate(
            model,
            tok,
            [chat_prompt(e.prompt_question) for e in task.train],
            max_new_tokens=cfg["eval"]["max_new_tokens"],
            do_sample=True,
            temperature=p["sample_temperature"],
            num_return_sequences=p["pairs_per_entity"],
            seed=seed + 3,
        )
        k_s = p["pairs_per_entity"]
        samples = [gen.texts[i * k_s : (i + 1) * k_s] for i in range(len(task.train))]
    pairs = make_pairs(task.train, p["pairs_per_entity"], p["p_partial"], seed, samples)
    out["frac_sampled_rejected"] = sum(q.sampled for q in pairs) / len(pairs)
    chosen = [encode(tok, q.entity, q.chosen) for q in pairs]
    rejected = [encode(tok, q.entity, q.rejected) for q in pairs]
    k = cfg["pref"].get("n_classes", 4)
    degree = {}
    for mode in ("key", "control"):
        tr = make_degree_examples(task.train, k, mode, seed)
        te = make_degree_examples(task.test, k, mode, seed + 1)
        degree[mode] = (
            [encode(tok, d.entity, d.text) for d in tr],
            [d.label for d in tr],
            [encode(tok, d.entity, d.text) for d in te],
            [d.label for d in te],
        )

    curves = {}
    for arm, spec in cfg["arms"].items():
        policy = copy.deepcopy(model)
        pcfg = PrefConfig(**{**cfg["pref"], "lam": spec["lam"] if spec["degree"] else 0.0})
        d_train, d_labels, d_test, d_test_labels = degree[spec["degree"] or "key"]
        head, h = train_preference(
            policy,
            chosen,
            rejected,
            d_train,
            d_labels,
            pcfg,
            pad_id=pad,
            seed=seed,
            on_log=lambda step, row, arm=arm: ctx.log(phase=arm, **row),
        )
        curves[arm] = h
        sc = score(policy, tok, task.test, **ev)
        out[f"{arm}_reward"] = float(sc["greedy"].mean())
        out[f"{arm}_reward_t07"] = float(sc["sampled"].mean())
        out[f"{arm}_winrate"] = win_rate(sc["greedy"], sft_scores["greedy"])
        out[f"{arm}_winrate_t07"] = win_rate(sc["sampled"], sft_scores["sampled"])
        out[f"{arm}_reward_acc"] = h[-1]["reward_acc"]
        out[f"{arm}_examples"] = sc["examples"]
        if head is not None:
            out[f"{arm}_degree_acc"] = degree_accuracy(policy, head, d_test, d_test_labels, pad)
        del policy
    out["curves"] = curves
    return out

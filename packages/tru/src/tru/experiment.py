"""One (method, seed) unit: unlearn from the cached original model over a small (lr, alpha) grid,
select on the validation split, then evaluate the selected model on the test panels and attack it
by relearning.

Selection score (validation, the same for every method): (1 - forget exact match on the
validation template) + retain exact match on the validation authors. Neither set appears in any
unlearning loss, and neither is a test panel.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from tru.methods import UnlearnConfig, unlearn


def _streams(base: Any, method: str, batch_size: int, seed: int) -> dict[str, Any]:
    from tru.targets import target_segments
    from xentlab.data.tokenizer import chat_prompt
    from xentlab.lm.train import BatchStream, segments_example, sft_example

    tok, task = base.tokenizer, base.task
    pad = tok.pad_token_id
    forget = [sft_example(tok, qa.question, qa.answer) for qa in task.forget_unlearn]
    retain = [sft_example(tok, qa.question, qa.answer) for qa in task.retain_unlearn]
    # the same sampler seed for "forget" and "target": row i of both is the same query
    streams = {
        "forget": BatchStream(forget, batch_size, pad_id=pad, seed=seed),
        "retain": BatchStream(retain, batch_size, pad_id=pad, seed=seed + 1),
    }
    if method in ("tru", "refusal"):
        targets = [
            segments_example(
                tok,
                [(chat_prompt(qa.question), False)]
                + [(s, True) for s in target_segments(qa.fact, reasoning=method == "tru")],
            )
            for qa in task.forget_unlearn
        ]
        streams["target"] = BatchStream(targets, batch_size, pad_id=pad, seed=seed)
    return streams


def _base_point(bm: dict) -> dict[str, float]:
    """Step 0 of every trajectory: the original model on the validation panels."""
    return {
        "step": 0,
        "forget_em": bm["val_forget_em"],
        "retain_em": bm["val_retain_em"],
        "forget_refusal": bm["val_forget_refusal"],
        "retain_refusal": bm["val_retain_refusal"],
        "gibberish": None,
    }


def val_score(forget_em: float, retain_em: float) -> float:
    return (1.0 - forget_em) + retain_em


def relearn_attack(model: Any, base: Any, cfg: dict, seed: int) -> float:
    """Fine-tune a copy on half of the forget facts (true answers), then exact match on the other half."""
    from tru.evaluate import Judge, evaluate_panels
    from xentlab.lm.train import LMTrainConfig, fit_lm, sft_example

    tok, task = base.tokenizer, base.task
    attacked = copy.deepcopy(model)
    ex = [sft_example(tok, qa.question, qa.answer) for qa in task.relearn_train]
    fit_lm(
        attacked,
        ex,
        LMTrainConfig(
            steps=cfg["relearn_steps"], batch_size=cfg["batch_size"], lr=cfg["relearn_lr"], log_every=0
        ),
        pad_id=tok.pad_token_id,
        seed=seed + 2,
    )
    res = evaluate_panels(
        attacked, tok, Judge(task.bank), {"relearn": task.relearn_test}, max_new_tokens=cfg["max_new_tokens"]
    )
    return res["relearn"].em


def run_method(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """The experiment function of every method (``cfg["method"]``)."""
    from tru.base import get_base
    from tru.evaluate import Judge, evaluate_panels, flatten
    from xentlab.lm.train import lm_loss_backend

    method = cfg["method"]
    base = get_base(cfg["base"], seed, log=ctx.log)
    tok, task, model = base.tokenizer, base.task, base.model
    judge = Judge(task.bank)
    mnt = cfg["max_new_tokens"]
    streams = _streams(base, method, cfg["batch_size"], seed)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # TRU / refusal-only: the (lr, alpha) pairs of cfg["grid"]; the other methods: cfg["lrs"]
    if method in ("tru", "refusal"):
        grid = [(float(lr), float(a)) for lr, a in cfg["grid"]]
    else:
        grid = [(float(lr), None) for lr in cfg["lrs"]]
    sweep, best = [], None
    for lr, alpha in ctx.progress(grid, desc="grid"):
        model.load_state_dict(start)
        trajectory: list[dict[str, float]] = []

        def checkpoint(step: int, trajectory: list = trajectory) -> None:
            r = evaluate_panels(model, tok, judge, task.panels_val, max_new_tokens=mnt)
            trajectory.append(
                {
                    "step": step,
                    "forget_em": r["forget"].em,
                    "retain_em": r["retain"].em,
                    "forget_refusal": r["forget"].refusal,
                    "retain_refusal": r["retain"].refusal,
                    "gibberish": (
                        r["forget"].gibberish * r["forget"].n + r["retain"].gibberish * r["retain"].n
                    )
                    / (r["forget"].n + r["retain"].n),
                }
            )

        trajectory.append(_base_point(base.metrics))
        ucfg = UnlearnConfig(
            method=method,
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=lr,
            alpha=alpha if alpha is not None else 0.0,
            beta=cfg.get("beta", 0.1),
            eval_every=cfg["eval_every"],
        )
        hist = unlearn(
            model,
            ucfg,
            streams,
            pad_id=tok.pad_token_id,
            on_eval=checkpoint,
            on_log=lambda s, row, lr=lr, alpha=alpha: ctx.log(
                step=s, lr_peak=lr, alpha=alpha, **{k: v for k, v in row.items() if k != "step"}
            ),
        )
        checkpoint(cfg["steps"])
        last = trajectory[-1]
        point = {
            "lr": lr,
            "alpha": alpha,
            "val_forget_em": last["forget_em"],
            "val_retain_em": last["retain_em"],
            "val_score": val_score(last["forget_em"], last["retain_em"]),
            "final_loss": hist[-1]["loss"] if hist else None,
            "trajectory": trajectory,
        }
        sweep.append(point)
        if best is None or point["val_score"] > best[0]["val_score"]:
            best = (point, {k: v.detach().clone() for k, v in model.state_dict().items()})

    chosen, state = best
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        test = evaluate_panels(model, tok, judge, task.panels_test, max_new_tokens=mnt)
    out: dict[str, Any] = dict(flatten(test))
    bm = base.metrics
    out.update(
        retain_drop=bm["retain_em"] - out["retain_em"],
        retain_other_drop=bm["retain_other_em"] - out["retain_other_em"],
        cipher_retain_drop=bm["cipher_retain_em"] - out["cipher_retain_em"],
        relearn_em=relearn_attack(model, base, cfg, seed),
        lr=float(chosen["lr"]),
        val_score=chosen["val_score"],
    )
    if chosen["alpha"] is not None:
        out["alpha"] = float(chosen["alpha"])
    out["sweep"] = [{k: v for k, v in p.items() if k != "trajectory"} for p in sweep]
    out["trajectory"] = chosen["trajectory"]
    out["examples"] = {k: r.examples for k, r in test.items()}
    out["loss_backend"] = lm_loss_backend()
    return out


def run_base(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """Train (or load) the original model of this seed and report its evaluation."""
    from tru.base import get_base
    from xentlab.models.tiny_lm import count_parameters

    base = get_base(cfg["base"], seed, log=ctx.log)
    m = {k: v for k, v in base.metrics.items() if k != "examples"}
    m = {k: v for k, v in m.items() if v is not None}
    m["n_params"] = count_parameters(base.model)
    m["n_finetune"] = len(base.task.finetune)
    m["n_forget_queries"] = len(base.task.forget_unlearn)
    m["examples"] = base.metrics["examples"]
    return m

"""The (experiment, seed) unit of reproduce.py: SFT, the SFT model's held-out metrics, PPO with the
hybrid reward from that model, and the RL model's held-out metrics, all in one unit so that the
SFT-vs-RL comparison is paired within the seed (same data, same SFT weights)."""

from __future__ import annotations

from typing import Any


def run_sft_then_rl(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    import time

    import torch

    from securefix_rl.evaluate import evaluate
    from securefix_rl.semantic import SemScorer
    from securefix_rl.task import train_sft
    from securefix_rl.train import RLConfig, train_rl
    from xentlab.models.tiny_lm import count_parameters

    torch.set_num_threads(1)
    t0 = time.process_time()
    sft = train_sft(cfg["sft"], seed, log=ctx.log)
    t_sft = time.process_time() - t0
    sem = SemScorer(sft.model, sft.tokenizer)  # frozen SFT: semantic embedder and KL reference
    n_contrast = (cfg["sft"].get("select") or {}).get("n_dev", 100)  # the dev functions the stop rule reads
    contrast = reward_contrast(sft.data["dev"][:n_contrast], sem, cfg["rl"])
    test = sft.data["test"][: cfg["n_eval"]]
    mnt = cfg["rl"]["max_new_tokens"]
    before = evaluate(sft.model, sft.tokenizer, test, max_new_tokens=mnt, sem=sem)
    t1 = time.process_time()
    hist = train_rl(
        sft.model,
        sft.tokenizer,
        sft.data["train"],
        RLConfig(**cfg["rl"]),
        sem=sem,
        seed=seed,
        on_log=lambda row: ctx.log(phase="rl", **row),
    )
    t_rl = time.process_time() - t1
    after = evaluate(sft.model, sft.tokenizer, test, max_new_tokens=mnt, sem=sem)
    out: dict[str, Any] = {"n_params": count_parameters(sft.model), "sft_loss": sft.loss}
    out["sft_steps"] = sft.steps  # the per-seed stopping point (dev rule) when select is on
    if sft.checks:
        out["sft_dev_checks"] = [list(c) for c in sft.checks]
        out["sft_dev_sec_strict"] = next(r for s, r in sft.checks if s == sft.steps)
    for tag, m in (("sft", before), ("rl", after)):
        for k, v in m.items():
            out[f"{tag}_{k}"] = v
    out.update(contrast)
    out["cpu_s_sft"] = t_sft
    out["cpu_s_rl"] = t_rl
    out["reward_curve"] = [h["reward"] for h in hist]
    out["sample_sec_curve"] = [h["sample_sec_rate"] for h in hist]
    out["kl_curve"] = [h["kl"] for h in hist]
    out["reward_gap_curve"] = [h.get("reward_gap_guard") for h in hist]  # None: a group was empty
    gaps = [g for g in out["reward_gap_curve"] if g is not None]
    out["n_steps_with_gap"] = len(gaps)
    if gaps:  # the smoke run's one tiny step may have no guarded (or no unguarded) sample
        out["train_reward_gap_guard"] = sum(gaps) / len(gaps)
    n = max(1, len(hist) // 5)
    out["train_reward_first"] = sum(h["reward"] for h in hist[:n]) / n
    out["train_reward_last"] = sum(h["reward"] for h in hist[-n:]) / n
    return out


def reward_contrast(dev: list, sem: Any, rl: dict) -> dict[str, float]:
    """The reward's contrast on dev functions (never test), under the frozen SFT model's Sem: the
    reference repair (reward 1 on CodeBLEU, Sem 1) against the unrepaired copy of the vulnerable
    function (the guard lines missing, everything else right), a deterministic reading of how much
    the hybrid reward pays for the security lines alone."""
    from securefix_rl.reward import hybrid_rewards

    r, cb, sm = hybrid_rewards([p.vuln for p in dev], dev, sem, w_syn=rl["w_syn"], w_sem=rl["w_sem"])
    n = len(dev)
    return {
        "dev_reward_unguarded": sum(r) / n,
        "dev_codebleu_unguarded": sum(cb) / n,
        "dev_sem_unguarded": sum(sm) / n,
    }

"""``--scale full``: DCO / CE fine-tuning of a local HF causal LM on MATH in direct-answer format.

Inputs (config keys, or the environment variables in brackets), local paths only, nothing is
downloaded:

* ``model`` [DCO_MODEL]: a directory with a causal LM and its tokenizer (the paper: Llama-3-8B-base;
  Qwen2.5-1.5B fits one GPU).
* ``train_data`` [DCO_TRAIN_DATA] and ``test_data`` [DCO_TEST_DATA]: MATH rows ``{"problem": ...,
  "answer": ...}`` (the final answer only, e.g. the content of the solution's last \\boxed{}), as a
  JSON list or JSON lines (the paper: 12k train problems, the MATH500 test set).

Format: prompt ``"Question: {problem}\\nAnswer:"`` (the official ``math`` template,
refine/training/registry.py and test.py: ``"Question: {qe}\\nAnswer: {ans}"``), target
``" {answer}"`` + EOS; the loss is the DCO/CE loss of the target with the official fine-tuning rule
(``dco.train``, ``batch_rule`` "refine"), and the test metric is the exact pass@N
1 - (1 - p_hat(target|prompt))^N for every N of ``ns`` (the canonical-string probability: an
answer written differently counts as wrong, a lower bound on sampled pass@N).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xentlab.repro.local_data import local_path
from xentlab.repro.spec import ReproError

NEEDS = (
    "a local path (a causal-LM directory with its tokenizer for DCO_MODEL; MATH problem/answer rows as "
    "JSON or JSON lines for DCO_TRAIN_DATA and DCO_TEST_DATA; see packages/dco/README.md)"
)


def load_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    text = Path(path).read_text()
    rows = (
        json.loads(text)
        if text.lstrip().startswith("[")
        else [json.loads(x) for x in text.splitlines() if x.strip()]
    )
    bad = [i for i, r in enumerate(rows) if not {"problem", "answer"} <= set(r)]
    if bad:
        raise ReproError(f"{path}: rows {bad[:5]} lack 'problem'/'answer'")
    return [{"problem": str(r["problem"]), "answer": str(r["answer"]).strip()} for r in rows]


def prompt_of(problem: str) -> str:
    return f"Question: {problem}\nAnswer:"


def _example(tok: Any, row: dict) -> Any:
    from xentlab.lm.train import segments_example

    return segments_example(
        tok, [(prompt_of(row["problem"]), False), (f" {row['answer']}{tok.eos_token}", True)]
    )


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dco.evaluate import example_logprobs, greedy_confidence
    from dco.experiment import HIST_BINS, exact_pass_at
    from dco.train import TrainConfig, train

    model_dir = local_path(cfg, "model", "DCO_MODEL", needs=NEEDS)
    train_rows = load_rows(local_path(cfg, "train_data", "DCO_TRAIN_DATA", needs=NEEDS))
    test_rows = load_rows(local_path(cfg, "test_data", "DCO_TEST_DATA", needs=NEEDS))
    if cfg.get("max_train"):
        train_rows = train_rows[: cfg["max_train"]]
    test_rows = test_rows[: cfg["max_test"]] if cfg.get("max_test") else test_rows
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    use_bf16 = bool(cfg.get("bf16")) and ctx.device.type == "cuda"
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), local_files_only=True, torch_dtype=torch.bfloat16 if use_bf16 else torch.float32
    ).to(ctx.device)

    def keep(rows: list[dict]) -> list[tuple[dict, Any]]:
        out = []
        for r in rows:
            ex = _example(tok, r)
            if sum(ex.loss_mask) <= cfg["max_answer_tokens"]:
                out.append((r, ex))
        return out

    train_kept, test_kept = keep(train_rows), keep(test_rows)
    if not train_kept or not test_kept:
        raise ReproError("no train or test rows left after the max_answer_tokens filter")
    test_ex = [ex for _, ex in test_kept]
    ns = list(cfg["ns"])
    tcfg = TrainConfig(
        n_prime=cfg["n_prime"],
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        eval_every=cfg["eval_every"],
        epsilon=cfg["epsilon"],
        batch_rule=cfg["batch_rule"],
        length_norm=cfg["length_norm"],
        betas=tuple(cfg["betas"]),
        warmup_steps=cfg["warmup_steps"],
    )
    curve: list[dict] = []

    def evaluate(epoch: int) -> dict:
        log_p = example_logprobs(model, tok.pad_token_id, test_ex, batch_size=cfg["batch_size"])
        row = {"epoch": epoch, **exact_pass_at(log_p, ns)}
        ctx.log(step=epoch, **row)
        curve.append(row)
        return row

    train(
        model,
        tok,
        [ex for _, ex in train_kept],
        tcfg,
        seed=seed,
        evaluate=evaluate,
        on_log=lambda **r: ctx.log(**r),
    )
    prompts = [prompt_of(r["problem"]) for r, _ in test_kept]
    refs = [[t for t, m in zip(ex.input_ids, ex.loss_mask) if m] for _, ex in test_kept]
    g = greedy_confidence(model, tok, prompts, refs, max_new_tokens=cfg["max_answer_tokens"])
    conf, correct = np.asarray(g["confidence"]), np.asarray(g["correct"], dtype=bool)
    final = curve[-1]
    out: dict[str, Any] = {k: v for k, v in final.items() if k.startswith("pass@")}
    for n in ns:
        values = [r[f"pass@{n}"] for r in curve]
        out[f"peak_pass@{n}"] = max(values)
        out[f"drop_from_peak_pass@{n}"] = max(values) - final[f"pass@{n}"]
    big = f"pass@{max(ns)}"
    at_peak = max(range(len(curve)), key=lambda i: (curve[i][big], -i))
    out[f"pass@1_final_minus_at_peak_{big}"] = final["pass@1"] - curve[at_peak]["pass@1"]
    out["greedy_acc"] = float(correct.mean())
    out["n_train"], out["n_test"] = len(train_kept), len(test_kept)
    curve[-1]["hist_correct"] = np.histogram(conf[correct], HIST_BINS)[0].tolist()
    curve[-1]["hist_wrong"] = np.histogram(conf[~correct], HIST_BINS)[0].tolist()
    out["curve"] = curve
    return out

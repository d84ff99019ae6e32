"""``--scale full``: PACS and GRPO on a real model and math data, through trl's ``GRPOTrainer``
(launch with ``accelerate launch`` for several GPUs).

Inputs (config keys, or the environment variables in brackets), local paths only:

* ``model`` [PACS_MODEL]: a directory with a causal LM and its tokenizer (the paper: Qwen2.5-3B/7B).
* ``train_data`` [PACS_TRAIN_DATA]: DeepScaleR-style rows ``{"problem": ..., "answer": ...}`` as a
  JSON list, JSON lines or parquet file.
* ``eval_data`` [PACS_EVAL_DATA]: one such file or a directory of them (MATH500, AMC23, AIME24/25);
  each file is one benchmark.

Training: ``PACSTrainer`` subclasses ``GRPOTrainer`` and replaces its loss by ``pacs.loss.pacs_loss``
(with trl's own log-probs, old log-probs and rollouts); it keeps each prompt's n completions
together in one micro-batch (trl shuffles the generation batch, which would split the groups
that RLOO and the class weights need), and reads the 0/1 outcome labels from the reward
function. GRPO is trl's trainer itself with beta = 0, clip 0.2 and ``loss_type="dr_grpo"``, which
is verl's ``seq-mean-token-sum-norm`` aggregation the paper's baseline script uses up to a constant
factor (that verl sums over the micro-batch instead of averaging; README, Deviations). Official
hyperparameters: lr 1e-6, beta 1, n 8, no KL, no entropy bonus, response up to 4,096 tokens.

Reward: the last ``\\boxed{...}`` of the completion, compared with the reference answer after a
light normalisation (spaces, ``$``, ``\\left``/``\\right``, ``\\!``, trailing ``.``); the official code
uses its ``reward_function.py`` (math-verify style). Prompt: the question followed by the official
instruction (``src/preprocess_dataset.py``), as the user turn of the model's chat template.
Evaluation: pass@k (unbiased) from ``eval_samples`` samples per problem, drawn as the official
``scripts/inference.sh`` draws them: temperature ``eval_temperature`` (0.6) and nucleus ``eval_top_p``
(0.95), not the training temperature 1.0.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from xentlab.repro.local_data import local_path
from xentlab.repro.spec import ReproError

# the official src/preprocess_dataset.py: question = f"{question} {INSTRUCTION}" (train and eval sets)
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def _setting(cfg: dict, key: str, env: str) -> str:
    needs = (
        "a local path (a Qwen2.5 model directory for PACS_MODEL, DeepScaleR-style problem/answer data for "
        "PACS_TRAIN_DATA and PACS_EVAL_DATA; see packages/pacs/README.md)"
    )
    return str(local_path(cfg, key, env, needs=needs))


def load_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """problem/answer rows from a JSON list, JSON lines or parquet file."""
    path = Path(path)
    if path.suffix == ".parquet":
        from datasets import Dataset

        rows = Dataset.from_parquet(str(path)).to_list()
    else:
        text = path.read_text()
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    bad = [i for i, r in enumerate(rows) if not {"problem", "answer"} <= set(r)]
    if bad:
        raise ReproError(f"{path}: rows {bad[:5]} lack 'problem'/'answer'")
    return [{"problem": str(r["problem"]), "answer": str(r["answer"])} for r in rows]


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (balanced braces), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def normalise(ans: str) -> str:
    s = ans.strip().strip("$").replace("\\left", "").replace("\\right", "").replace("\\!", "")
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


def math_reward(completion: str, answer: str) -> float:
    got = last_boxed(completion)
    return float(got is not None and normalise(got) == normalise(answer))


def _completion_text(c: Any) -> str:
    return c[-1]["content"] if isinstance(c, list) else str(c)


def boxed_reward(completions: list, answer: list, **_: Any) -> list[float]:
    """trl reward function: 1.0 when the last boxed answer matches the reference."""
    return [math_reward(_completion_text(c), a) for c, a in zip(completions, answer)]


def _prompt(tokenizer: Any, problem: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{problem} {INSTRUCTION}"}]


def make_pacs_trainer_class():
    """``PACSTrainer``: trl's GRPOTrainer with the PACS loss (defined lazily: trl imports slowly)."""
    from trl import GRPOTrainer
    from trl.trainer.utils import split_tensor_dict

    from pacs.loss import PACSConfig, pacs_loss

    class PACSTrainer(GRPOTrainer):
        pacs_config = PACSConfig()

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
            self._pacs_rewards = (rewards_per_func * weights).nansum(dim=1)
            return rewards_per_func

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            n_local = out["completion_ids"].shape[0]
            start = self.accelerator.process_index * n_local  # trl's process_slice
            out["pacs_labels"] = (self._pacs_rewards[start : start + n_local] >= 0.5).float()
            return out

        def _prepare_inputs(self, generation_batch):
            # as trl's, without the shuffle: contiguous chunks keep each prompt's n completions together
            if not self.model.training:
                return self._generate_and_score_completions(generation_batch)
            generate_every = self.args.steps_per_generation * self.num_iterations
            if self._step % generate_every == 0 or self._buffered_inputs is None:
                batch = self._generate_and_score_completions(generation_batch)
                self._buffered_inputs = split_tensor_dict(batch, self.args.steps_per_generation)
            return self._buffered_inputs[self._step % self.args.steps_per_generation]

        def _compute_loss(self, model, inputs):
            prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
            completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
            input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
            attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
            logps, _, _ = self._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=False
            )
            old = inputs.get("old_per_token_logps")
            old = logps.detach() if old is None else old
            n = self.num_generations
            if completion_ids.shape[0] % n:
                raise ValueError(f"a PACS micro-batch must hold whole groups of {n} completions")
            loss, stats = pacs_loss(
                logps, old, completion_mask.float(), inputs["pacs_labels"], n, self.pacs_config
            )
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["pacs/psi_abs"].append(stats["psi_abs"])
            normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            return loss / normalizer

    return PACSTrainer


def _trl_args(cfg: dict, out_dir: Path, seed: int, device: Any) -> Any:
    from trl import GRPOConfig

    n = cfg["num_generations"]
    per_device = cfg["per_device_train_batch_size"]
    if per_device % n:
        raise ReproError(
            f"per_device_train_batch_size={per_device} must be a multiple of num_generations={n}"
        )
    method = cfg["method"]
    return GRPOConfig(
        output_dir=str(out_dir),
        seed=seed,
        learning_rate=cfg["lr"],
        lr_scheduler_type="constant",
        weight_decay=0.01,
        max_grad_norm=(1e9 if method == "pacs" else 1.0),  # the PACS actor never clips (official)
        num_generations=n,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        steps_per_generation=cfg.get("steps_per_generation") or cfg["gradient_accumulation_steps"],
        max_steps=cfg["steps"],
        max_completion_length=cfg["max_completion_length"],
        temperature=cfg["temperature"],
        beta=0.0,
        epsilon=0.2,
        loss_type=cfg.get("loss_type", "dr_grpo"),
        bf16=bool(cfg["bf16"]) and torch.cuda.is_available(),
        use_cpu=str(device) == "cpu",
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        shuffle_dataset=True,
    )


def _pass_at_k(model: Any, tokenizer: Any, rows: list[dict], cfg: dict, seed: int) -> dict[str, float]:
    import numpy as np

    from xentlab.lm.generate import generate
    from xentlab.metrics.pass_at_k import mean_pass_at_k

    rows = rows[: cfg["eval_max_problems"]]
    prompts = [
        tokenizer.apply_chat_template(
            _prompt(tokenizer, r["problem"]), tokenize=False, add_generation_prompt=True
        )
        for r in rows
    ]
    # the official scripts/inference.sh samples with vLLM SamplingParams(temperature=0.6, top_p=0.95)
    # (top_k off; generate's default), not at the training temperature
    n = cfg["eval_samples"]
    gens = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=cfg["eval_max_new_tokens"],
        do_sample=True,
        temperature=cfg["eval_temperature"],
        top_p=cfg["eval_top_p"],
        num_return_sequences=n,
        batch_size=8,
        seed=10_007 + seed,
    )
    counts = [0] * len(rows)
    for j, text in enumerate(gens.texts):
        counts[j // n] += int(math_reward(text, rows[j // n]["answer"]) >= 0.5)
    ks = [k for k in cfg["eval_ks"] if k <= cfg["eval_samples"]]
    c = np.asarray(counts, dtype=np.int64)
    return {f"pass@{k}": v for k, v in mean_pass_at_k(np.full_like(c, n), c, ks).items()}


def _eval_sets(path: str) -> dict[str, list[dict]]:
    p = Path(path)
    files = (
        sorted(f for f in p.iterdir() if f.suffix in (".json", ".jsonl", ".parquet")) if p.is_dir() else [p]
    )
    if not files:
        raise ReproError(f"PACS_EVAL_DATA={path} holds no .json/.jsonl/.parquet file")
    return {f.stem: load_rows(f) for f in files}


def _evaluate(model: Any, tokenizer: Any, eval_path: str, cfg: dict, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    per_set = {}
    for name, rows in _eval_sets(eval_path).items():
        res = _pass_at_k(model, tokenizer, rows, cfg, seed)
        per_set[name] = res
        for k, v in res.items():
            out[f"{name}_{k}"] = v
    # the headline metrics: mean over benchmarks
    ks = next(iter(per_set.values())).keys()
    for k in ks:
        out[k] = sum(r[k] for r in per_set.values()) / len(per_set)
    out["pass_curve"] = {k.split("@")[1]: out[k] for k in ks}
    return out


def _load_tokenizer(model_path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _load(model_path: str, device: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True).to(device)
    return model, _load_tokenizer(model_path)


def run_full_base(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """The base model's pass@k on the evaluation sets (the 'SFT start' of the cpu scale)."""
    model_path = _setting(cfg, "model", "PACS_MODEL")
    eval_path = _setting(cfg, "eval_data", "PACS_EVAL_DATA")
    model, tok = _load(model_path, ctx.device)
    model.eval()
    return _evaluate(model, tok, eval_path, cfg, seed)


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """PACS (``PACSTrainer``) or GRPO (``GRPOTrainer``) from the local model, then pass@k."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from pacs.loss import PACSConfig

    model_path = _setting(cfg, "model", "PACS_MODEL")
    train_path = _setting(cfg, "train_data", "PACS_TRAIN_DATA")
    eval_path = _setting(cfg, "eval_data", "PACS_EVAL_DATA")
    method = cfg["method"]
    if method not in ("pacs", "grpo"):
        raise ReproError(f"unknown method {method!r}")
    tok = _load_tokenizer(model_path)
    rows = load_rows(train_path)
    # the official data.filter_overlong_prompts=True (trl 1.16 has no max_prompt_length)
    limit = cfg["max_prompt_length"]

    def n_tokens(problem: str) -> int:
        text = tok.apply_chat_template(_prompt(tok, problem), tokenize=False, add_generation_prompt=True)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    rows = [r for r in rows if n_tokens(r["problem"]) <= limit]
    if not rows:
        raise ReproError(f"no training prompt fits max_prompt_length={limit}")
    ds = Dataset.from_list([{"prompt": _prompt(tok, r["problem"]), "answer": r["answer"]} for r in rows])
    args = _trl_args(cfg, ctx.unit_dir / "trl", seed, ctx.device)
    if method == "pacs":
        cls = make_pacs_trainer_class()
        cls.pacs_config = PACSConfig(beta=cfg["beta"])
    else:
        cls = GRPOTrainer
    trainer = cls(
        model=model_path, reward_funcs=boxed_reward, args=args, train_dataset=ds, processing_class=tok
    )
    result = trainer.train()
    history = [row for row in trainer.state.log_history if "reward" in row]
    for row in history:
        ctx.log(step=row.get("step"), reward=row.get("reward"), loss=row.get("loss"))
    model = trainer.model
    model.eval()
    out = _evaluate(model, tok, eval_path, cfg, seed)
    out["train_loss"] = float(result.training_loss)
    out["reward_curve"] = [float(row["reward"]) for row in history]
    return out

"""--scale full: TOFU with a local causal LM (Phi-1.5 in the paper's configs), the official unlearning
recipe (yascho/probabilistic-unlearning ``unlearning/configs/phi-{GA,GD,NPO}.yaml``), GA / GD / NPO each
with and without EO, and the same probabilistic evaluation as the cpu scale (``prob_unlearn.evaluation``).

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``tofu`` / ``$PROB_UNLEARN_TOFU``: a folder with the locuslab/TOFU files: ``forget01``, ``forget05``,
  ``forget10``, ``retain99``, ``retain95``, ``retain90`` and (to fine-tune first) ``full``, each
  ``<name>.json`` or ``<name>.jsonl``, as JSON lines (TOFU's own format) or one JSON list, rows
  ``{"question": ..., "answer": ...}``. ``split`` (1, 5 or 10) picks ``forget{split:02}`` and
  ``retain{100 - split}``.
* ``model`` / ``$PROB_UNLEARN_MODEL``: a causal LM directory (``save_pretrained``) with its tokenizer,
  already fine-tuned on TOFU (the configs' ``INSERT_PATH_TO_FINETUNED_MODEL``), or the base model when
  ``finetune`` is true (then it is first fine-tuned on ``full`` with ``finetuning/configs/phi.yaml``, once,
  and cached: ``finetune_key``, which names the inputs' files, the recipe and the code that fine-tunes;
  xentlab.data.cache, "The key rule").
* ``tokenizer`` / ``$PROB_UNLEARN_TOKENIZER`` (optional): a tokenizer directory, when the model
  directory has none (the configs read the tokenizer from ``microsoft/phi-1_5``).

What the official code does, and this module with it:

* tokenizer: right padding, a ``[PAD]`` special token added (``model.py``);
* encoding (``encoding.py``): ``"Question: " + q + "\\n" + "Answer: " + a + eos``, padded to
  max_length 256; labels -100 on the question (the first ``len(tok(question))`` tokens) and on pad tokens,
  so the loss covers ``Answer: `` + the answer + eos;
* batches (``dataloader.py``): one item per forget row, paired with a random retain row
  ``(idx + randint) % len(retain)``; per-device batch 16, gradient accumulation 4;
* trainer (``unlearning.py``): ``max_steps = num_epochs * len(forget) // 64``, warm-up
  ``max(1, len(forget) // 64)`` steps then linear decay (the HF Trainer default), AdamW lr 1e-5,
  weight decay 0.01 (not on biases and LayerNorm weights), gradient clipping 1.0 (Trainer default), bf16;
* losses (``unlearning_trainer.py``): ``prob_unlearn.losses.unlearning_loss``; EO averages the entropy
  over every position of the max_length-padded batch (``positions="all"``, the official behaviour);
  NPO's reference is the model before unlearning;
* evaluation (``sampling.py`` / ``sampling-demo.ipynb``): greedy and ``n_samples`` = 128 sampled answers
  per forget question (top_p 0.9, temperature 1), ROUGE-L (``xentlab.metrics.rouge``, F-measure) against the gold
  answer, M_mu / M_sigma / ED and M_bin (``prob_unlearn.evaluation``, bounds from ``xentlab.metrics.bounds``,
  2 alpha, alpha = 0.01).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from prob_unlearn.evaluation import QA, evaluate_model
from prob_unlearn.losses import unlearning_loss
from xentlab.data.cache import code_key, source_digest
from xentlab.lm import trainer_defaults
from xentlab.lm.train import IGNORE_INDEX
from xentlab.lm.trainer_defaults import trainer_adamw
from xentlab.repro.local_data import MissingLocalData, local_path

ENV_MODEL = "PROB_UNLEARN_MODEL"
ENV_TOFU = "PROB_UNLEARN_TOFU"
ENV_TOKENIZER = "PROB_UNLEARN_TOKENIZER"
SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the fine-tuned model's cache key (xentlab.data.cache, "The key rule")"""

# The config entries that shape the fine-tuned weights (``finetune`` and what it calls): the recipe, the
# encoding, mixed precision and clipping. Evaluation and unlearning settings stay out of the key.
FINETUNE_KEYS = ("finetune_cfg", "max_length", "question_start_tag", "question_end_tag", "answer_tag", "amp",
                 "max_grad_norm")  # fmt: skip
TOFU_LAYOUT = (
    "forget01/05/10 and retain99/95/90 (+ full to fine-tune) as <name>.json or <name>.jsonl, "
    "JSON lines or a JSON list of {question, answer} (the locuslab/TOFU files)"
)


# --------------------------------------------------------------------------- data


def read_qa(path: Path) -> list[dict[str, str]]:
    """TOFU rows from a JSON-lines file or one JSON list; only question and answer are kept."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not {"question", "answer"} <= set(r):
            raise ValueError(f"{path} row {i}: need 'question' and 'answer'")
    if not rows:
        raise ValueError(f"{path} has no rows")
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def tofu_split(root: Path, name: str) -> list[dict[str, str]]:
    for ext in (".json", ".jsonl"):
        if (root / f"{name}{ext}").is_file():
            return read_qa(root / f"{name}{ext}")
    raise MissingLocalData(f"{name}.json(l) not found under {root} (${ENV_TOFU}); expected {TOFU_LAYOUT}")


def load_tofu(root: Path, split: int, with_full: bool = False) -> dict[str, list[dict[str, str]]]:
    """forget{split:02} and retain{100 - split} (dataloader.load_datasets), and ``full`` if asked."""
    if split not in (1, 5, 10):
        raise ValueError(f"split must be 1, 5 or 10 (TOFU's forget01/05/10), got {split}")
    out = {
        "forget": tofu_split(root, f"forget{split:02}"),
        "retain": tofu_split(root, f"retain{100 - split}"),
    }
    if with_full:
        out["full"] = tofu_split(root, "full")
    return out


def load_tokenizer(path: Path) -> Any:
    """model.py: right padding and a ``[PAD]`` token (Phi-1.5 has none; eos must stay a label)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tok.padding_side = "right"
    if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id:
        tok.add_special_tokens({"pad_token": "[PAD]"})
    return tok


def encode_qa(tok: Any, question: str, answer: str, cfg: dict) -> dict[str, list[int]]:
    """encoding.encode_finetune: the tagged text padded to max_length, loss on the answer part."""
    q = cfg["question_start_tag"] + question + cfg["question_end_tag"]
    text = q + cfg["answer_tag"] + answer + tok.eos_token
    answer_start = len(tok(q, add_special_tokens=True)["input_ids"])
    enc = tok(
        text, truncation=True, padding="max_length", max_length=cfg["max_length"], add_special_tokens=True
    )
    ids = enc["input_ids"]
    labels = [IGNORE_INDEX if (i < answer_start or t == tok.pad_token_id) else t for i, t in enumerate(ids)]
    return {"input_ids": ids, "attention_mask": enc["attention_mask"], "labels": labels}


def stack(rows: list[dict[str, list[int]]], device) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.long, device=device) for k in rows[0]}


def micro_batches(n: int, batch: int, gen: torch.Generator):
    """The Trainer's shuffled sampler, epoch after epoch (the last short batch is kept)."""
    while True:
        perm = torch.randperm(n, generator=gen).tolist()
        for i in range(0, n, batch):
            yield perm[i : i + batch]


def _autocast(device: torch.device, amp: str | None):
    enabled = bool(amp) and device.type == "cuda"
    return torch.autocast(device.type, dtype=getattr(torch, amp) if enabled else None, enabled=enabled)


# --------------------------------------------------------------------------- fine-tuning (optional)


def finetune(model: Any, tok: Any, rows: list[dict], cfg: dict, device, log=None) -> Any:
    """finetuning/training.py: answer-token CE on TOFU ``full``, batch 16 x 2, lr 2e-5, 5 epochs,
    weight decay 0.01, warm-up one epoch (``max_steps // num_epochs``), then linear decay."""
    from xentlab.lm.train import lm_loss

    ft = cfg["finetune_cfg"]
    enc = [encode_qa(tok, r["question"], r["answer"], cfg) for r in rows]
    per_step = ft["batch_size"] * ft["grad_accum"]
    max_steps = int(ft["epochs"] * len(enc)) // per_step
    if max_steps < 1:
        raise ValueError(f"{len(enc)} rows give no fine-tuning step at {per_step} rows per step")
    opt, sched = trainer_adamw(model, lr=ft["lr"], weight_decay=ft["weight_decay"], total_steps=max_steps,
                               warmup_steps=max(1, max_steps // ft["epochs"]))  # fmt: skip
    stream = micro_batches(len(enc), ft["batch_size"], torch.Generator().manual_seed(ft["seed"]))
    model.train()
    for step in range(max_steps):
        total = 0.0
        for _ in range(ft["grad_accum"]):
            batch = stack([enc[i] for i in next(stream)], device)
            with _autocast(device, cfg["amp"]):
                loss = lm_loss(model, batch) / ft["grad_accum"]
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if log and (step + 1) % max(1, max_steps // 20) == 0:
            log(step=step + 1, phase="finetune", loss=total, lr=sched.get_last_lr()[0])
    model.eval()
    return model


@functools.lru_cache(maxsize=1)
def finetune_code() -> str:
    """The code part of ``finetune_key``: this module (encoding, batches, the fine-tuning loop),
    ``xentlab.lm.trainer_defaults`` (the Trainer's optimizer groups and schedule), the LM stack with its loss backend (``xentlab.lm.code.lm_stack_digests``: ``lm_loss``
    and the kernels behind it) and the libraries whose numbers end up in the weights. Any edit of that code
    gives a new key, so a model fine-tuned by older code is never loaded."""
    from xentlab.lm.code import lm_stack_digests

    return code_key(SOURCE_DIGEST, trainer_defaults.SOURCE_DIGEST, *lm_stack_digests(),
                    libraries=("torch", "transformers", "tokenizers"))  # fmt: skip


def dir_identity(path: Path | None) -> list | None:
    """A directory's resolved path and (relative path, size, mtime) of every file under it: a re-saved or
    re-downloaded model or tokenizer under the same path gives a new identity (nothing is hashed: weights
    are gigabytes)."""
    if path is None:
        return None
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return [str(root), [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]]


def finetune_key(model_dir: Path, tok_dir: Path | None, tofu: dict, cfg: dict, device) -> str:
    """The fine-tuned model's cache key: the base model's and tokenizer's files (``dir_identity``), TOFU
    ``full``, the config entries that shape the weights (``FINETUNE_KEYS``), the device type (bf16 autocast
    runs on CUDA only) and the code (``finetune_code()``)."""
    blob = json.dumps(
        {
            "model": dir_identity(model_dir),
            "tokenizer": dir_identity(tok_dir),
            "rows": tofu["full"],
            "recipe": {k: cfg[k] for k in FINETUNE_KEYS},
            "device": torch.device(device).type,
            "code": finetune_code(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def finetuned_model(
    model_dir: Path, tok: Any, tofu: dict, cfg: dict, device, log=None, tok_dir: Path | None = None
) -> Any:
    """The TOFU fine-tuned model: loaded as is, or fine-tuned once and cached (shared by every seed).
    ``tok_dir``: where ``tok`` was read from when not ``model_dir`` (it is part of the cache key)."""
    from transformers import AutoModelForCausalLM

    from xentlab.data.build_once import build_once
    from xentlab.data.cache import cache_dir

    def load(path):
        m = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, torch_dtype=torch.float32)
        if m.get_input_embeddings().weight.shape[0] < len(tok):  # room for [PAD] (Phi-1.5 has it)
            m.resize_token_embeddings(len(tok))
        return m.to(device)

    if not cfg["finetune"]:
        return load(model_dir).eval()
    out = Path(cfg.get("finetuned_dir") or cache_dir("prob-unlearn", "finetuned")) / finetune_key(
        model_dir, tok_dir, tofu, cfg, device
    )

    def build(tmp: Path) -> None:
        torch.manual_seed(cfg["finetune_cfg"]["seed"])
        m = finetune(load(model_dir), tok, tofu["full"], cfg, device, log)
        m.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    # once across parallel units (file lock), saved into a temporary directory renamed onto ``out`` when
    # complete (a run killed mid-save leaves nothing that looks built), with one torch thread and the
    # caller's RNG states restored (the weights and the unit's random stream do not depend on which unit
    # built it)
    return load(build_once(out, build)).eval()


# --------------------------------------------------------------------------- unlearning


def unlearn(base: Any, tok: Any, tofu: dict, cfg: dict, variant: dict, seed: int, device, log=None) -> Any:
    """One variant ({method, eo}) with the official trainer settings, on a copy of ``base``."""
    model = copy.deepcopy(base)
    forget = [encode_qa(tok, r["question"], r["answer"], cfg) for r in tofu["forget"]]
    retain = [encode_qa(tok, r["question"], r["answer"], cfg) for r in tofu["retain"]]
    per_step = cfg["batch_size"] * cfg["grad_accum"]
    steps_per_epoch = len(forget) // per_step
    max_steps = int(cfg["epochs"] * len(forget)) // per_step
    if max_steps < 1:
        raise ValueError(f"{len(forget)} forget rows give no unlearning step at {per_step} rows per step")
    ref = None
    if variant["method"] == "npo":
        ref = copy.deepcopy(base).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    opt, sched = trainer_adamw(model, lr=cfg["lr"], weight_decay=cfg["weight_decay"], total_steps=max_steps,
                               warmup_steps=max(1, steps_per_epoch))  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    stream = micro_batches(len(forget), cfg["batch_size"], gen)
    model.train()
    for step in range(max_steps):
        logs: dict[str, float] = {}
        for _ in range(cfg["grad_accum"]):
            idx = next(stream)
            # dataloader.UnlearningDataset: each forget row with a random retain row
            r_idx = [(i + int(torch.randint(len(retain), (1,), generator=gen))) % len(retain) for i in idx]
            fb = stack([forget[i] for i in idx], device)
            rb = stack([retain[i] for i in r_idx], device)
            with _autocast(device, cfg["amp"]):
                loss, logs = unlearning_loss(
                    model, fb, rb, method=variant["method"], ref_model=ref, lam=cfg["lambda"], beta=cfg["beta"],
                    eo=variant["eo"], lambda_f=cfg["lambda_f"], lambda_r=cfg["lambda_r"],
                    positions=variant["positions"],
                )  # fmt: skip
            (loss / cfg["grad_accum"]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if log:
            log(step=step + 1, variant=variant["name"], loss=loss.item(), lr=sched.get_last_lr()[0], **logs)
    del ref
    model.eval()
    return model


# --------------------------------------------------------------------------- evaluation


def prompt(tok: Any, question: str, cfg: dict) -> str:
    """sampling.generate's prompt; with ``prompt_answer_tag`` the answer tag (without its trailing space,
    so the answer's first token keeps its leading space) ends the prompt, as in training."""
    p = cfg["question_start_tag"] + question + cfg["question_end_tag"]
    if cfg["prompt_answer_tag"]:
        p += cfg["answer_tag"].rstrip()
    ids = tok("x", add_special_tokens=True)["input_ids"]
    bos = tok.bos_token if tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id] else ""
    return bos + p  # xentlab.lm.generate tokenizes without special tokens


def _strip_tag(text: str, cfg: dict) -> str:
    text = text.strip()
    tag = cfg["answer_tag"].strip()
    return text[len(tag) :].strip() if tag and text.startswith(tag) else text


def eval_questions(tok: Any, tofu: dict, cfg: dict) -> tuple[list[QA], list[QA]]:
    """The first ``n_forget_eval`` forget and ``n_retain_eval`` retain rows as evaluation questions; no
    ``value``, so a sample *leaks* when its ROUGE-L against the gold answer is >= ``leak_threshold``."""

    def qa(r: dict) -> QA:
        return QA(prompt=prompt(tok, r["question"], cfg), answer=r["answer"], question=r["question"])

    forget = [qa(r) for r in tofu["forget"][: cfg["n_forget_eval"]]]
    retain = [qa(r) for r in tofu["retain"][: cfg["n_retain_eval"]]]
    return forget, retain


def evaluate(model: Any, tok: Any, tofu: dict, cfg: dict, seed: int, device) -> dict[str, Any]:
    """Greedy and sampled forget answers, greedy retain answers: ``prob_unlearn.evaluation.evaluate_model``
    with the answer tag stripped, generation under bf16 autocast on CUDA."""
    forget, retain = eval_questions(tok, tofu, cfg)
    return evaluate_model(
        model,
        tok,
        forget,
        retain,
        cfg,
        seed,
        clean=lambda t: _strip_tag(t, cfg),
        greedy_batch=cfg["greedy_batch"],
        context=lambda: _autocast(device, cfg["amp"]),
    )


# --------------------------------------------------------------------------- one seed


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """The fine-tuned model and every variant of ``cfg["variants"]`` on TOFU, evaluated as at cpu scale."""
    tofu_root = local_path(cfg, "tofu", ENV_TOFU, needs=f"a folder with the TOFU files: {TOFU_LAYOUT}")
    model_dir = local_path(
        cfg, "model", ENV_MODEL, needs="a local causal LM directory (save_pretrained, TOFU fine-tuned)"
    )
    tok_dir = local_path(cfg, "tokenizer", ENV_TOKENIZER, needs="a tokenizer directory", required=False)
    device = ctx.device
    tofu = load_tofu(tofu_root, cfg["split"], with_full=cfg["finetune"])
    tok = load_tokenizer(tok_dir or model_dir)
    base = finetuned_model(model_dir, tok, tofu, cfg, device, log=ctx.log, tok_dir=tok_dir)
    out: dict[str, Any] = {}
    with torch.no_grad():
        res = evaluate(base, tok, tofu, cfg, seed, device)
    out.update({f"base_{k}": v for k, v in res.items()})
    for variant in ctx.progress(cfg["variants"], desc="variants"):
        torch.manual_seed(seed)
        model = unlearn(base, tok, tofu, cfg, variant, seed, device, log=ctx.log)
        with torch.no_grad():
            res = evaluate(model, tok, tofu, cfg, seed, device)
        out.update({f"{variant['name']}_{k}": v for k, v in res.items()})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    out["n_forget_questions"] = min(len(tofu["forget"]), cfg["n_forget_eval"])
    out["n_retain_questions"] = min(len(tofu["retain"]), cfg["n_retain_eval"])
    out["unlearning_steps"] = int(cfg["epochs"] * len(tofu["forget"])) // (
        cfg["batch_size"] * cfg["grad_accum"]
    )
    return out

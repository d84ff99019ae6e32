"""``--scale full``: a local causal code LM (CodeGen2-style) with LoRA, real vulnerable / fixed pairs.

Inputs (config key, or the environment variable in brackets; nothing is downloaded, see
``xentlab.repro.local_data``):

* ``model`` [SECUREFIX_MODEL]: a local directory with a transformers causal LM and its tokenizer
  (``save_pretrained`` layout), e.g. ``Salesforce/codegen2-1B_P`` saved locally (the paper's CodeGen2).
  CodeGen2 needs ``trust_remote_code``: set ``trust_remote_code: true`` in the config only for a model
  directory you trust.
* ``data`` [SECUREFIX_DATA]: a JSON-lines file of ``{"vulnerable": str, "fixed": str, "cwe": str}`` rows
  (e.g. function-level exports of CVEfixes or BigVul), split here with a fixed seed into train / test;
  or a directory with ``train.jsonl`` and ``test.jsonl`` in that format (its own split).
* ``encoder`` [SECUREFIX_ENCODER]: a local directory with a transformers encoder and its tokenizer for
  the semantic term (the paper's BERTScore; e.g. ``microsoft/codebert-base`` saved locally).

The method (the cpu task's, on the real model; ``train.train_rl`` and ``reward.hybrid_rewards`` are the
same functions):

1. SFT: LoRA (peft) on the LM, cross-entropy on ``fixed + eos`` after the prompt
   ``bos + vulnerable + separator`` (the package's format), then the adapter is merged.
2. The merged SFT model is the KL reference (a frozen copy); a fresh LoRA adapter is trained with the
   package's PPO-lite on the hybrid reward ``w_syn * CodeBLEU + w_sem * Sem``.
3. Sem is BERTScore's greedy-matching F1 (``semantic.greedy_f1``) over the encoder's token embeddings
   (layer ``sem_layer``, special tokens excluded, no idf, no rescaling).
4. CodeBLEU parses with the grammar of ``lang`` (``c`` for CVEfixes / BigVul) when the installed
   tree-sitter grammars allow it; this workspace pins the Python grammar only, so other languages fall
   back to ``python`` (BLEU and weighted BLEU are unaffected; the AST and data-flow terms then parse C as
   Python, which mostly fails and scores low). ``codebleu_lang`` in the output says which one ran.

Metrics, SFT and RL model on the same held-out pairs: corpus CodeBLEU (and its components), exact match
(whitespace-normalised) and the mean semantic score. The security-inclusion checker and functional
preservation apply only to the synthetic language of the cpu task and are not reported here.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xentlab.repro.local_data import MissingLocalData, local_path
from xentlab.repro.spec import ReproError

ENV_MODEL = "SECUREFIX_MODEL"
ENV_DATA = "SECUREFIX_DATA"
ENV_ENCODER = "SECUREFIX_ENCODER"
DATA_LAYOUT = (
    'a .jsonl file of {"vulnerable": str, "fixed": str, "cwe": str} rows, or a directory with '
    "train.jsonl and test.jsonl in that format"
)
SPLIT_SEED = 2401  # the fixed train / test split of a single file (independent of the run seed)


@dataclass(frozen=True)
class CodePair:
    """A real vulnerable / fixed function pair (the attribute names of ``lang.Pair`` the rewards read)."""

    vuln: str
    fixed: str
    cwe: str = ""


def read_pairs(path: Path) -> list[CodePair]:
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        r = json.loads(line)
        if not isinstance(r, dict) or not {"vulnerable", "fixed"} <= set(r):
            raise ReproError(f"{path} line {i + 1}: expected {DATA_LAYOUT}")
        rows.append(CodePair(str(r["vulnerable"]), str(r["fixed"]), str(r.get("cwe", ""))))
    if not rows:
        raise ReproError(f"{path} holds no pairs; expected {DATA_LAYOUT}")
    return rows


def load_pairs(path: Path, test_frac: float = 0.1) -> dict[str, list[CodePair]]:
    """{"train", "test"}: the directory's own split, or a seeded split of one file."""
    path = Path(path)
    if path.is_dir():
        files = {s: path / f"{s}.jsonl" for s in ("train", "test")}
        missing = [str(f) for f in files.values() if not f.is_file()]
        if missing:
            raise MissingLocalData(f"{ENV_DATA}={path}: {missing} not found; expected {DATA_LAYOUT}")
        return {s: read_pairs(f) for s, f in files.items()}
    rows = read_pairs(path)
    order = list(range(len(rows)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_test = max(1, round(test_frac * len(rows)))
    if n_test >= len(rows):
        raise ReproError(f"{path}: {len(rows)} pairs are too few to split off {n_test} for the test")
    return {"test": [rows[i] for i in order[:n_test]], "train": [rows[i] for i in order[n_test:]]}


def normalise(code: str) -> str:
    """Whitespace-insensitive form for exact match (token streams equal up to layout)."""
    return re.sub(r"\s+", " ", code).strip()


class EncoderSemScorer:
    """BERTScore-style greedy F1 (``semantic.greedy_f1``) over a local encoder's token embeddings."""

    def __init__(self, path: str, device: torch.device, *, layer: int | None = None, batch_size: int = 32):
        from transformers import AutoModel, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.layer, self.batch_size, self.device = layer, batch_size, device
        self.max_len = min(int(getattr(self.tok, "model_max_length", 512) or 512), 512)

    @torch.no_grad()
    def embed(self, texts: list[str]) -> list[torch.Tensor]:
        out = []
        for s in range(0, len(texts), self.batch_size):
            enc = self.tok(
                texts[s : s + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_len,
                return_tensors="pt",
                return_special_tokens_mask=True,
            )
            special = enc.pop("special_tokens_mask").bool()
            enc = {k: v.to(self.device) for k, v in enc.items()}
            res = self.model(**enc, output_hidden_states=self.layer is not None)
            h = res.last_hidden_state if self.layer is None else res.hidden_states[self.layer]
            h = torch.nn.functional.normalize(h.float(), dim=-1).cpu()
            keep = enc["attention_mask"].bool().cpu() & ~special
            out += [h[i][keep[i]] for i in range(len(h))]
        return out

    def f1(self, cands, refs) -> list[float]:
        from securefix_rl.semantic import greedy_f1

        if len(cands) != len(refs):
            raise ValueError(f"{len(cands)} candidates but {len(refs)} references")
        e = self.embed(list(cands) + list(refs))
        return [greedy_f1(e[i], e[len(cands) + i]) for i in range(len(cands))]


def evaluate_full(model, tok, pairs, prompt_fn, *, max_new_tokens: int, sem, lang: str) -> dict[str, Any]:
    """Greedy repairs of the held-out pairs: corpus CodeBLEU (+ components), exact match, mean Sem."""
    from securefix_rl.codebleu_score import corpus_codebleu
    from xentlab.lm.generate import generate

    outs = generate(
        model, tok, [prompt_fn(p) for p in pairs], max_new_tokens=max_new_tokens, batch_size=16
    ).texts
    refs = [p.fixed for p in pairs]
    cb = corpus_codebleu(outs, refs, lang)
    f = sem.f1(outs, refs)
    return {
        "codebleu": cb["codebleu"],
        "ngram": cb["ngram_match_score"],
        "syntax": cb["syntax_match_score"],
        "dataflow": cb["dataflow_match_score"],
        "exact": sum(normalise(o) == normalise(r) for o, r in zip(outs, refs)) / len(pairs),
        "sem": sum(f) / len(f),
        "example_outputs": outs[:4],
    }


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """SFT (LoRA, merged), evaluate, PPO-lite (fresh LoRA) on the hybrid reward, evaluate (paired)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from securefix_rl.codebleu_score import codebleu_language
    from securefix_rl.train import RLConfig, train_rl
    from xentlab.lm.train import LMTrainConfig, fit_lm, segments_example

    model_dir = str(
        local_path(cfg, "model", ENV_MODEL, needs="a local causal code LM directory (save_pretrained)")
    )
    data_path = local_path(cfg, "data", ENV_DATA, needs=DATA_LAYOUT)
    enc_dir = str(
        local_path(cfg, "encoder", ENV_ENCODER, needs="a local encoder directory (e.g. codebert-base)")
    )
    device = ctx.device
    lang = codebleu_language(cfg.get("lang", "c"))
    remote = bool(cfg.get("trust_remote_code", False))
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[cfg.get("dtype", "fp32")]

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=remote)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token_id is None:
        raise ReproError(f"{model_dir}: the tokenizer has no eos token (needed to end a repair)")
    sep = cfg.get("separator", "# fix\n")
    bos, eos = tok.bos_token or "", tok.eos_token

    def prompt_fn(p: CodePair) -> str:
        return f"{bos}{p.vuln.rstrip()}\n{sep}"

    def n_tokens(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    data = load_pairs(data_path, cfg.get("test_frac", 0.1))
    # long functions do not fit the context / memory budget: keep pairs whose prompt + repair fit
    max_len = cfg["max_len"]
    fits = {
        s: [p for p in rows if n_tokens(prompt_fn(p)) + n_tokens(p.fixed + eos) <= max_len]
        for s, rows in data.items()
    }
    if not fits["train"] or not fits["test"]:
        raise ReproError(f"no pair fits max_len={max_len} tokens in one of the splits; raise max_len")
    train, test = fits["train"], fits["test"][: cfg["n_eval"]]

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, trust_remote_code=remote, torch_dtype=dtype
    ).to(device)

    def lora() -> LoraConfig:
        return LoraConfig(
            r=cfg["lora_r"],
            lora_alpha=cfg["lora_alpha"],
            lora_dropout=cfg.get("lora_dropout", 0.0),
            target_modules=cfg.get("lora_targets") or "all-linear",
            task_type="CAUSAL_LM",
        )

    # 1) SFT with LoRA on fixed + eos (the prompt is context), then merge the adapter
    model = get_peft_model(model, lora())
    sft_cfg = cfg["sft"]
    examples = [segments_example(tok, [(prompt_fn(p), False), (f"{p.fixed}{eos}", True)]) for p in train]
    hist = fit_lm(
        model,
        examples,
        LMTrainConfig(steps=sft_cfg["steps"], batch_size=sft_cfg["batch"], lr=sft_cfg["lr"], log_every=10),
        pad_id=tok.pad_token_id,
        seed=seed,
        on_log=lambda s, row: ctx.log(phase="sft", **row),
    )
    model = model.merge_and_unload().eval()

    sem = EncoderSemScorer(enc_dir, device, layer=cfg.get("sem_layer"))
    mnt = cfg["rl"]["max_new_tokens"]
    before = evaluate_full(model, tok, test, prompt_fn, max_new_tokens=mnt, sem=sem, lang=lang)

    # 2) RL: a fresh adapter on the merged SFT model; the frozen merged copy is the KL reference
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    policy = get_peft_model(model, lora())
    hist_rl = train_rl(
        policy,
        tok,
        train,
        RLConfig(**cfg["rl"]),
        sem=sem,
        seed=seed,
        on_log=lambda row: ctx.log(phase="rl", **row),
        prompt_fn=prompt_fn,
        ref=ref,
        lang=lang,
        checker=False,
    )
    after = evaluate_full(policy, tok, test, prompt_fn, max_new_tokens=mnt, sem=sem, lang=lang)

    out: dict[str, Any] = {"sft_loss": float(hist[-1]["loss"]), "n_train": len(train), "n_test": len(test)}
    for tag, m in (("sft", before), ("rl", after)):
        for k, v in m.items():
            out[f"{tag}_{k}"] = v
    out["codebleu_lang"] = lang
    out["reward_curve"] = [h["reward"] for h in hist_rl]
    out["kl_curve"] = [h["kl"] for h in hist_rl]
    n = max(1, len(hist_rl) // 5)
    out["train_reward_first"] = sum(h["reward"] for h in hist_rl[:n]) / n
    out["train_reward_last"] = sum(h["reward"] for h in hist_rl[-n:]) / n
    return out

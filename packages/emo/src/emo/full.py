"""``--scale full``: fine-tune a local HF causal LM (the paper: GPT-2) on local WikiText-style text with
MLE and with EMO from the same loaded checkpoint, as in the official ``language_modeling/run_lm.py``
(block_size 256, batch 32, lr 5e-5, one epoch, unbiased decoding of 80 new tokens).

Inputs (config keys, or the environment variables in brackets), local paths only, nothing is downloaded:

* ``model`` [EMO_MODEL]: a directory with a causal LM and its tokenizer (``save_pretrained`` layout);
* ``train_text`` [EMO_TRAIN_TEXT] and ``test_text`` [EMO_TEST_TEXT]: plain UTF-8 text files (e.g. the
  raw WikiText-2/103 train and test splits written out as text).

Metrics per method: test perplexity over ``block_size`` blocks of the test text, and unbiased samples
(continuations of ``prompt_len``-token test prefixes) written to ``<unit_dir>/samples_<method>.jsonl``
together with their human references, for MAUVE computed offline (MAUVE needs a large feature model,
not run here). The cost embedding is a frozen copy of the LM head taken AFTER ``from_pretrained``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from emo.loss import emo_loss, make_cost_embedding, mle_loss
from emo.optim import finetune_optimizer
from xentlab.repro.local_data import local_path

NEEDS = (
    "a local path (a causal-LM directory with its tokenizer for EMO_MODEL; plain text files for "
    "EMO_TRAIN_TEXT and EMO_TEST_TEXT; see packages/emo/README.md)"
)


def _blocks(tok: Any, path: Path, block: int, limit: int | None) -> torch.Tensor:
    ids = tok(path.read_text(encoding="utf-8"), return_attention_mask=False)["input_ids"]
    n = len(ids) // block
    if n == 0:
        raise ValueError(f"{path}: fewer than block_size={block} tokens")
    x = torch.tensor(ids[: n * block]).view(n, block)
    return x[:limit] if limit else x


def _load(model_dir: Path, device: torch.device):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device)
    return tok, model


@torch.no_grad()
def _perplexity(model, blocks: torch.Tensor, batch: int, device) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch):
        x = blocks[i : i + batch].to(device)
        logits = model(input_ids=x).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
        )
        total, count = total + nll.item(), count + x[:, 1:].numel()
    return math.exp(total / count)


def run_full(cfg: dict, seed: int, ctx: Any) -> dict:
    model_dir = local_path(cfg, "model", "EMO_MODEL", needs=NEEDS)
    train_path = local_path(cfg, "train_text", "EMO_TRAIN_TEXT", needs=NEEDS)
    test_path = local_path(cfg, "test_text", "EMO_TEST_TEXT", needs=NEEDS)
    dev = ctx.device
    tok, _ = _load(model_dir, torch.device("cpu"))
    train = _blocks(tok, train_path, cfg["block_size"], cfg.get("max_train_blocks"))
    test = _blocks(tok, test_path, cfg["block_size"], cfg.get("max_test_blocks"))
    out: dict = {"n_train_blocks": len(train), "n_test_blocks": len(test)}
    steps = cfg["epochs"] * math.ceil(len(train) / cfg["batch_size"])
    for method in ("mle", "emo"):
        torch.manual_seed(seed)
        _, model = _load(model_dir, dev)  # the same loaded checkpoint for both methods
        cost = make_cost_embedding(model.get_output_embeddings().weight).to(dev)  # after loading
        # run_lm.py: AdamW, weight decay 0.0 (its default), linear decay to 0 over the run, no warm-up
        opt, sched = finetune_optimizer(model.parameters(), cfg["lr"], steps)
        g = torch.Generator().manual_seed(seed)
        model.train()
        step = 0
        for _ in range(cfg["epochs"]):
            for idx in torch.randperm(len(train), generator=g).split(cfg["batch_size"]):
                x = train[idx].to(dev)
                logits = model(input_ids=x).logits[:, :-1].float()
                y = x[:, 1:]
                loss = emo_loss(logits, y, cost) if method == "emo" else mle_loss(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if step % cfg["log_every"] == 0 or step == steps:
                    ctx.log(step=step, method=method, loss=loss.item())
        out[f"{method}_test_ppl"] = _perplexity(model, test, cfg["batch_size"], dev)
        model.eval()
        prompts = test[: cfg["n_samples"], : cfg["prompt_len"]].to(dev)
        torch.manual_seed(seed)
        with torch.no_grad():
            gen = model.generate(
                prompts,
                attention_mask=torch.ones_like(prompts),
                do_sample=True,
                top_k=0,
                top_p=1.0,
                temperature=1.0,
                max_new_tokens=cfg["new_tokens"],
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        rows = [
            {
                "prompt": tok.decode(p),
                "sample": tok.decode(s[cfg["prompt_len"] :]),
                "reference": tok.decode(test[i, cfg["prompt_len"] : cfg["prompt_len"] + cfg["new_tokens"]]),
            }
            for i, (p, s) in enumerate(zip(prompts.cpu(), gen.cpu(), strict=True))
        ]
        (Path(ctx.unit_dir) / f"samples_{method}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        del model, opt
    out["ppl_rel_gap"] = out["emo_test_ppl"] / out["mle_test_ppl"] - 1.0
    out["steps_per_method"] = steps
    return out

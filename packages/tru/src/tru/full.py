"""``--scale full``: TRU and the baselines with LoRA on a real Hugging Face causal LM, TOFU-style data.

Inputs (config keys, or the environment variables in brackets):

* ``model`` [TRU_MODEL]: a local directory with a causal LM and its tokenizer (e.g. a TOFU
  fine-tuned Llama-2-7b-chat or Phi-1.5); nothing is downloaded.
* ``data`` [TRU_DATA]: a directory with ``forget.json`` and ``retain.json``, each a JSON list (or
  JSON lines) of ``{"question": ..., "answer": ...}`` (TOFU's ``forget05.json`` / ``retain95.json``
  renamed, for instance).
* ``reasoner`` [TRU_REASONER] (optional): a local instruction model that writes the reasoning
  targets, as the paper's DeepSeek-reasoner does. The targets are generated once and cached
  (``xentlab.data.cache_dir("tru", "targets")``, keyed by the reasoner's files, the forget rows, the
  prompt, ``max_new_tokens``, the device type and the code that writes and parses them,
  ``targets_code()``; xentlab.data.cache, "The key rule"); without a reasoner, template targets are used.
  The reasoner generates on the run's device (``ctx.device``); a tokenizer without a pad token (Llama's)
  pads with its eos token, as the trained model's does.

Training: LoRA adapters (peft) on every linear layer, placed by accelerate on its device; the
losses are ``tru.methods.LOSSES`` (NPO's reference is the model with the adapter disabled).
Evaluation: greedy answers to the forget and retain questions; ROUGE-L recall of the true answer
(TOFU's metric), coherent-refusal and degenerate-output rates. One process (one GPU): the loss
reads the backbone's hidden states directly, which bypasses a DDP wrapper.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch

from tru import evaluate as _evaluate
from tru.evaluate import REFUSAL_RE, answer_part
from tru.methods import LOSSES
from xentlab.data.cache import cache_dir, code_key, source_digest
from xentlab.metrics.rouge import rouge_l
from xentlab.repro.local_data import local_path
from xentlab.repro.spec import ReproError

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the reasoning targets' cache key (xentlab.data.cache, "The key rule")"""

TARGET_PROMPT = (
    "A model must unlearn the answer below. Write two things. First, a short reasoning that says "
    "what knowledge the question asks for and that this knowledge is within the unlearning scope. "
    "Second, a refusal that declines for that reason, offers a positive alternative, and reveals "
    "nothing about the answer.\nQuestion: {question}\nAnswer to unlearn: {answer}\n"
    "Reply exactly as:\nReasoning: <reasoning>\nResponse: <refusal>"
)
TEMPLATE_REASONING = (
    "The question asks about knowledge that is in the unlearning scope, so it must stay private."
)
TEMPLATE_REFUSAL = "I can't share that information, but I am happy to help with a different question."


def load_qa(path: Path) -> list[dict[str, str]]:
    text = Path(path).read_text()
    rows = (
        json.loads(text)
        if text.lstrip().startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    bad = [i for i, r in enumerate(rows) if not {"question", "answer"} <= set(r)]
    if bad:
        raise ReproError(f"{path}: rows {bad[:5]} lack 'question'/'answer'")
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def _setting(cfg: dict, key: str, env: str, required: bool = True) -> str | None:
    path = local_path(cfg, key, env, needs="a local path (see packages/tru/README.md)", required=required)
    return None if path is None else str(path)


def degenerate(text: str) -> bool:
    """A crude gibberish test for free text: mostly non-letters, or mostly repeated words."""
    words = re.findall(r"\w+", text.lower())
    letters = sum(ch.isalpha() for ch in text)
    return not words or letters < 0.5 * max(len(text.strip()), 1) or len(set(words)) < 0.3 * len(words)


def _prompt(tok: Any, question: str) -> str:
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return f"{tok.bos_token or ''}Question: {question}\nAnswer:"


@functools.lru_cache(maxsize=1)
def targets_code() -> str:
    """The code part of ``targets_key``: this module (the reasoner's prompt and chat template, the parsing,
    the template fallback), ``tru.evaluate`` (``REFUSAL_RE`` decides which generations are kept),
    ``xentlab.lm.generate`` (greedy decoding) and the libraries whose numbers end up in the generated text.
    Any edit of that code gives a new key, so targets written by older code are never read. Each module's
    ``SOURCE_DIGEST`` is its source as imported (the code that runs), never its file as it is on disk later."""
    from xentlab.lm import generate

    return code_key(SOURCE_DIGEST, _evaluate.SOURCE_DIGEST, generate.SOURCE_DIGEST,
                    libraries=("torch", "transformers", "tokenizers"))  # fmt: skip


def _dir_identity(path: str) -> list:
    """The reasoner directory's resolved path and (relative path, size, mtime) of every file under it: a
    re-saved model under the same path gives a new key (nothing is hashed: weights are gigabytes)."""
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return [str(root), [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]]


def targets_key(forget: list[dict], reasoner: str, max_new_tokens: int, device: Any = "cpu") -> str:
    """The cache key of the reasoner's targets: its files, the forget rows, the prompt, the generation
    length, the device type (greedy text written on a GPU can differ from a CPU's: other kernels, other
    argmax ties) and the code (``targets_code()``)."""
    blob = json.dumps(
        [_dir_identity(reasoner), TARGET_PROMPT, forget, max_new_tokens, torch.device(device).type,
         targets_code()]
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reasoning_targets(
    forget: list[dict], reasoner: str | None, max_new_tokens: int = 160, device: Any = "cpu"
) -> list[tuple[str, str]]:
    """(r_rt, s_rt) per forget row; written by ``reasoner`` on ``device`` once and cached, or from templates."""
    if reasoner is None:
        return [(TEMPLATE_REASONING, TEMPLATE_REFUSAL)] * len(forget)
    from xentlab.data.build_once import build_once

    device = torch.device(device)

    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from xentlab.lm.generate import generate

        rtok = AutoTokenizer.from_pretrained(reasoner, local_files_only=True)
        if rtok.pad_token_id is None:  # Llama-style: generate left-pads batches, so it needs a pad id
            rtok.pad_token = rtok.eos_token
        rmodel = AutoModelForCausalLM.from_pretrained(reasoner, local_files_only=True).to(device)
        prompts = [_prompt(rtok, TARGET_PROMPT.format(**row)) for row in forget]
        texts = generate(rmodel, rtok, prompts, max_new_tokens=max_new_tokens, batch_size=8).texts
        out = []
        for text in texts:
            m = re.search(r"Reasoning:\s*(.+?)\s*Response:\s*(.+)", text, re.S)
            ok = m and REFUSAL_RE.search(m.group(2))
            out.append(
                (m.group(1).strip(), m.group(2).strip()) if ok else (TEMPLATE_REASONING, TEMPLATE_REFUSAL)
            )
        tmp.write_text(json.dumps(out, indent=2) + "\n")

    # written once across parallel units (file lock) into a temporary file renamed into place, with one
    # torch thread (greedy argmaxes then do not depend on the caller's thread count)
    path = build_once(
        cache_dir("tru", "targets") / f"{targets_key(forget, reasoner, max_new_tokens, device)}.json", build
    )
    if device.type == "cuda":  # the reasoner is gone: hand its memory back before the model under training
        torch.cuda.empty_cache()
    return [tuple(x) for x in json.loads(path.read_text())]


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """One method with LoRA on a local model; returns forget/retain ROUGE-L and refusal rates."""
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xentlab.data.tokenizer import chat_response
    from xentlab.lm.generate import generate
    from xentlab.lm.train import BatchStream, LMTrainConfig, make_optimizer, segments_example

    model_path = _setting(cfg, "model", "TRU_MODEL")
    data_dir = Path(_setting(cfg, "data", "TRU_DATA"))
    reasoner = _setting(cfg, "reasoner", "TRU_REASONER", required=False)
    method = cfg["method"]
    forget, retain = load_qa(data_dir / "forget.json"), load_qa(data_dir / "retain.json")

    accelerator = Accelerator(cpu=ctx.device.type == "cpu")
    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    eos = tok.eos_token or ""

    def qa_example(q: str, segments: list[str]):
        return segments_example(tok, [(_prompt(tok, q), False)] + [(s, True) for s in segments])

    def answer_segments(a: str) -> list[str]:
        return [chat_response(a).replace("</s>", eos)]

    bs, pad = cfg["batch_size"], tok.pad_token_id
    streams = {
        "forget": BatchStream(
            [qa_example(r["question"], answer_segments(r["answer"])) for r in forget],
            bs,
            pad_id=pad,
            seed=seed,
        ),
        "retain": BatchStream(
            [qa_example(r["question"], answer_segments(r["answer"])) for r in retain],
            bs,
            pad_id=pad,
            seed=seed + 1,
        ),
    }
    if method in ("tru", "refusal"):
        targets = reasoning_targets(forget, reasoner, device=ctx.device)
        rows = []
        for row, (r, s) in zip(forget, targets):
            segs = ([f" Reasoning: {r}"] if method == "tru" else []) + [f" Response: {s}{eos}"]
            rows.append(qa_example(row["question"], segs))
        streams["target"] = BatchStream(rows, bs, pad_id=pad, seed=seed)
    train_cfg = LMTrainConfig(
        steps=cfg["steps"], batch_size=bs, lr=cfg["lr"], warmup_frac=0.1, weight_decay=0.0
    )
    opt, sched = make_optimizer(model, train_cfg)
    model, opt = accelerator.prepare(model, opt)
    needs = {"ga": ("forget",), "graddiff": ("forget", "retain"), "npo": ("forget",)}.get(
        method, ("target", "forget", "retain")
    )
    model.train()
    for step in ctx.progress(range(cfg["steps"]), desc=method):
        batches = {k: {n: t.to(accelerator.device) for n, t in streams[k](step).items()} for k in needs}
        extra = {}
        if method == "npo":
            from xentlab.lm.train import lm_loss

            with torch.no_grad(), accelerator.unwrap_model(model).disable_adapter():
                extra["nll_ref"] = lm_loss(model, batches["forget"], reduction="sum")
        loss, logs = LOSSES[method](
            model, batches, alpha=cfg.get("alpha", 0.5), beta=cfg.get("beta", 0.1), **extra
        )
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        opt.step()
        sched.step()
        ctx.log(step=step + 1, loss=loss.item(), **logs)

    model.eval()
    inner = accelerator.unwrap_model(model)
    n_eval = cfg.get("n_eval", 100)
    out: dict[str, Any] = {}
    for name, rows in (("forget", forget[:n_eval]), ("retain", retain[:n_eval])):
        gens = generate(
            inner,
            tok,
            [_prompt(tok, r["question"]) for r in rows],
            max_new_tokens=cfg["max_new_tokens"],
            batch_size=16,
        )
        # TOFU's eval_rouge_recall: rouge-score's ROUGE-L recall with the Porter stemmer
        rouge = [rouge_l(answer_part(t), r["answer"], measure="recall") for r, t in zip(rows, gens.texts)]
        refusal = [bool(REFUSAL_RE.search(answer_part(t))) for t in gens.texts]
        out[f"{name}_rougeL"] = sum(rouge) / len(rouge)
        out[f"{name}_refusal"] = sum(refusal) / len(refusal)
        out[f"{name}_gibberish"] = sum(
            not r and degenerate(answer_part(t)) for r, t in zip(refusal, gens.texts)
        ) / len(rows)
        out[f"{name}_examples"] = [{"q": r["question"], "out": t} for r, t in zip(rows[:3], gens.texts)]
    return out

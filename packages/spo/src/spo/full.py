"""``--scale full``: DPO vs DPO + SPO with LoRA on a local 1-7B causal LM, Anthropic-HH or TL;DR
preference pairs, RAKE as the selector, and a local reward model as the judge (never run here).

Inputs (config key, else the environment variable; local paths only, nothing is downloaded):

* ``model`` / ``$SPO_MODEL``: a causal LM directory with its tokenizer (``save_pretrained``), e.g.
  a Llama-2-7B or Pythia-2.8B. With ``sft.steps > 0`` it is first fine-tuned (LoRA, then merged) on
  the chosen responses of the training pairs, DPO's SFT recipe for Anthropic-HH; with
  ``sft.steps = 0`` the directory must already hold the SFT model.
* ``data`` / ``$SPO_DATA``: a folder with ``train`` and ``test`` files (``.jsonl``, ``.jsonl.gz`` or a
  ``.json`` list). A row is either Anthropic-HH's own ``{"chosen": dialogue, "rejected": dialogue}``
  (``"\\n\\nHuman: ... \\n\\nAssistant: ..."``; the prompt is everything up to the last
  ``"\\n\\nAssistant:"``), or an explicit ``{"prompt", "chosen", "rejected"}`` triple, the layout of
  TL;DR preference pairs (prompt ending in ``"TL;DR:"``).
* ``reward_model`` / ``$SPO_REWARD_MODEL``: a sequence-classification model directory with one
  output (a released reward model for the dataset); it replaces the paper's GPT-4 judge.

One seed: (optional) SFT; reference log-probs of every pair under the SFT model (the reference
never changes, so they are computed once); then every arm of ``cfg["arms"]`` from the SFT weights
with a fresh LoRA adapter (same pairs, same order, same steps): DPO (lambda = 0), DPO + SPO with
RAKE-key-phrase removal, and the control, whose "selector" removes the *lowest*-ranked RAKE
phrases (content the selector deems least key). Greedy and temperature samples of the SFT model
and of every arm on the same held-out prompts are scored by the reward model: mean reward and the
win rate against the SFT model's response to the same prompt (ties count half, ``spo.evaluate``).
The metric names are those of the cpu scale, so the claims and figures read the same keys.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xentlab.repro.local_data import MissingLocalData, local_path
from xentlab.repro.spec import ReproError

ENV_MODEL = "SPO_MODEL"
ENV_DATA = "SPO_DATA"
ENV_REWARD = "SPO_REWARD_MODEL"
DATA_LAYOUT = (
    "a folder with train.jsonl and test.jsonl (or .jsonl.gz, or a .json list): Anthropic-HH rows "
    "{chosen, rejected} holding whole dialogues, or TL;DR-style rows {prompt, chosen, rejected}"
)
ASSISTANT = "\n\nAssistant:"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PrefRow:
    """One preference pair: the shared prompt and the two responses (each with its leading space)."""

    prompt: str
    chosen: str
    rejected: str


def split_dialogues(chosen: str, rejected: str) -> PrefRow:
    """Anthropic-HH: both dialogues share the conversation up to the last ``\\n\\nAssistant:``; the
    prompt is that prefix (marker included) and the responses are the final assistant turns."""
    cut = chosen.rfind(ASSISTANT)
    if cut < 0:
        raise ValueError("an Anthropic-HH dialogue must contain '\\n\\nAssistant:'")
    prompt = chosen[: cut + len(ASSISTANT)]
    if not rejected.startswith(prompt):  # a few HH rows differ earlier: cut both at their common prefix
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        cut = chosen.rfind(ASSISTANT, 0, n)
        if cut < 0 or cut + len(ASSISTANT) > n:
            raise ValueError("chosen and rejected dialogues share no prompt ending in '\\n\\nAssistant:'")
        prompt = chosen[: cut + len(ASSISTANT)]
    return PrefRow(prompt, chosen[len(prompt) :], rejected[len(prompt) :])


def read_records(path: Path) -> list[dict]:
    """Rows of a JSON-lines file (optionally gzipped) or of one JSON list."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_split(root: Path, name: str) -> list[PrefRow]:
    """``<root>/<name>.jsonl`` (or .jsonl.gz / .json) as preference rows, either layout."""
    for ext in (".jsonl", ".jsonl.gz", ".json", ".json.gz"):
        path = root / f"{name}{ext}"
        if path.is_file():
            break
    else:
        raise MissingLocalData(f"{name}.jsonl not found under {root} (${ENV_DATA}); expected {DATA_LAYOUT}")
    rows = []
    for i, r in enumerate(read_records(path)):
        if not isinstance(r, dict) or not {"chosen", "rejected"} <= set(r):
            raise ValueError(f"{path} row {i}: need 'chosen' and 'rejected' (and 'prompt' for TL;DR pairs)")
        if "prompt" in r:
            rows.append(PrefRow(str(r["prompt"]), str(r["chosen"]), str(r["rejected"])))
        else:
            rows.append(split_dialogues(str(r["chosen"]), str(r["rejected"])))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


# --------------------------------------------------------------------------- tokenization


def encode(tok: Any, prompt: str, response: str, max_length: int):
    """An ``xentlab.lm.train.Example``: [bos] prompt response eos, loss on the response and eos only.

    The whole text is tokenized at once (so the boundary tokenizes as in the running text); a token
    that straddles the boundary counts as prompt. The response is cut to fit ``max_length``.
    """
    from xentlab.lm.train import Example

    ids_prompt = tok(prompt, add_special_tokens=True)["input_ids"]
    ids = tok(prompt + response, add_special_tokens=True)["input_ids"]
    n = len(ids_prompt)
    while n > 0 and ids[:n] != ids_prompt[:n]:
        n -= 1
    ids = (ids + [tok.eos_token_id])[:max_length]
    if len(ids) <= n:
        raise ValueError(f"the prompt fills max_length={max_length}: no response token left")
    return Example(tuple(ids), tuple([0] * n + [1] * (len(ids) - n)))


def prompt_fits(tok: Any, prompt: str, max_prompt_length: int) -> bool:
    return len(tok(prompt, add_special_tokens=True)["input_ids"]) <= max_prompt_length


def generation_prompt(tok: Any, prompt: str) -> str:
    """``xentlab.lm.generate`` tokenizes without special tokens: the bos text goes in the string."""
    ids = tok("x", add_special_tokens=True)["input_ids"]
    bos = tok.bos_token if tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id] else ""
    return (bos or "") + prompt


def cut_at_stop(text: str, stops: list[str]) -> str:
    """A completion up to the first stop string (a model may write the next 'Human:' turn)."""
    for s in stops:
        i = text.find(s)
        if i >= 0:
            text = text[:i]
    return text.strip()


# --------------------------------------------------------------------------- SPO degree data (RAKE)


def degraded_responses(response: str, n_classes: int, mode: str, rng: random.Random, max_words: int):
    """The K = ``n_classes`` degree variants of one response, [(text, m)] for m = 0..K-1, or [] when
    RAKE finds fewer than 2K distinct phrases (key and non-key units must not overlap).

    "key" (SPO): the selector's units are the K top-ranked RAKE phrases; variant m deletes every
    occurrence of m of them, drawn at random. "control": the same with the K lowest-ranked phrases.
    """
    from spo.rake import rake, remove_spans

    if mode not in ("key", "control"):
        raise ValueError(f"mode must be 'key' or 'control', got {mode!r}")
    phrases = rake(response, max_words=max_words)
    if len(phrases) < 2 * n_classes:
        return []
    units = phrases[:n_classes] if mode == "key" else phrases[-n_classes:]
    lead = response[: len(response) - len(response.lstrip())]  # keep the leading space of the turn
    out = []
    for m in range(n_classes):
        drop = rng.sample(units, m)
        text = remove_spans(response, [s for p in drop for s in p.spans])
        out.append((lead + text, m))
    return out


def degree_set(tok: Any, rows: list[PrefRow], cfg: dict, mode: str, seed: int) -> tuple[list, list[int]]:
    """Encoded degree examples (prompt + degraded chosen response) and their labels m."""
    rng = random.Random(f"spo-full-degree-{mode}-{seed}")
    examples, labels = [], []
    for r in rows:
        for text, m in degraded_responses(
            r.chosen, cfg["pref"]["n_classes"], mode, rng, cfg["selector"]["max_words"]
        ):
            examples.append(encode(tok, r.prompt, text, cfg["max_length"]))
            labels.append(m)
    return examples, labels


# --------------------------------------------------------------------------- models


def _dtype(cfg: dict, device: torch.device) -> torch.dtype:
    return getattr(torch, cfg["dtype"]) if device.type == "cuda" else torch.float32


def _autocast(device: torch.device, cfg: dict):
    on = device.type == "cuda" and cfg["dtype"] != "float32"
    return torch.autocast(device.type, dtype=getattr(torch, cfg["dtype"]) if on else None, enabled=on)


def load_policy(path: Path, cfg: dict, device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # padding is masked everywhere; eos stays a label
    model = AutoModelForCausalLM.from_pretrained(
        str(path), local_files_only=True, torch_dtype=_dtype(cfg, device)
    ).to(device)
    return model, tok


def add_lora(model: Any, cfg: dict) -> Any:
    from peft import LoraConfig, get_peft_model

    lc = cfg["lora"]
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=lc["r"],
            lora_alpha=lc["alpha"],
            lora_dropout=lc["dropout"],
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    if cfg.get("gradient_checkpointing"):
        peft_model.enable_input_require_grads()
        peft_model.gradient_checkpointing_enable()
    return peft_model


def _strip_lora(peft_model: Any, cfg: dict, *, merge: bool) -> Any:
    """The base model back, with the adapter merged in (SFT) or removed (an arm)."""
    base = peft_model.merge_and_unload() if merge else peft_model.unload()
    if cfg.get("gradient_checkpointing"):
        base.gradient_checkpointing_disable()
        base.disable_input_require_grads()
    return base


class _Rows:
    """Right-padded rows of a fixed example list (kept in CPU memory), trimmed per selection and
    moved to ``device``."""

    def __init__(self, examples: list, pad_id: int, device: torch.device):
        from xentlab.lm.train import collate

        self.tensors = collate(examples, pad_id)
        self.lengths = self.tensors["attention_mask"].sum(1)
        self.device = device

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = idx.cpu()
        width = int(self.lengths[idx].max())
        return {k: v[idx, :width].to(self.device) for k, v in self.tensors.items()}


def _logps(model: Any, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(response | prompt) per row from final hidden states (the cpu scale's computation)."""
    from xentlab.lm.train import token_cross_entropy

    head = model.get_output_embeddings()
    return -token_cross_entropy(
        hidden, head.weight, labels, bias=getattr(head, "bias", None), reduction="sum"
    )


@torch.no_grad()
def sequence_logprobs(model: Any, rows: _Rows, n: int, batch: int, cfg: dict, device) -> torch.Tensor:
    from xentlab.lm.train import hidden_states

    model.eval()
    out = []
    for i in range(0, n, batch):
        b = rows(torch.arange(i, min(n, i + batch)))
        with _autocast(device, cfg):
            out.append(_logps(model, hidden_states(model, b), b["labels"]).float())
    return torch.cat(out)


def _accumulate_steps(module: Any, steps: int, lr: float, warmup_frac: float, micro_loss, n_micro: int,
                      cfg: dict, device, log, phase: str) -> list[dict[str, float]]:  # fmt: skip
    """AdamW with warm-up + cosine (``xentlab.lm.train``), gradient accumulation over ``n_micro``
    equal micro-batches (each loss is a mean, so the accumulated gradient is the full batch's)."""
    from xentlab.lm.train import LMTrainConfig, make_optimizer

    tcfg = LMTrainConfig(steps=steps, lr=lr, warmup_frac=warmup_frac, weight_decay=0.0)
    opt, sched = make_optimizer(module, tcfg)
    params = [p for p in module.parameters() if p.requires_grad]
    history = []
    module.train()
    log_every = max(1, steps // cfg.get("log_points", 20))
    for step in range(steps):
        sums: dict[str, float] = {}
        for k in range(n_micro):
            with _autocast(device, cfg):
                loss, stats = micro_loss(step, k)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{phase}: non-finite loss at step {step}")
            (loss / n_micro).backward()
            for key, v in stats.items():
                sums[key] = sums.get(key, 0.0) + v / n_micro
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            row = {"step": step + 1, "lr": sched.get_last_lr()[0], **sums}
            history.append(row)
            log(phase=phase, **row)
    module.eval()
    return history


def _micro(batch: int, micro: int, what: str) -> int:
    if micro < 1 or batch % micro:
        raise ReproError(f"{what}: batch {batch} must be a multiple of micro_batch {micro}")
    return batch // micro


# --------------------------------------------------------------------------- phases


def sft(model: Any, tok: Any, rows: list[PrefRow], cfg: dict, seed: int, device, log) -> tuple[Any, float]:
    """LoRA SFT on (prompt, chosen) (DPO's SFT start for Anthropic-HH), merged into the weights."""
    from xentlab.lm.train import hidden_states
    from xentlab.train.loop import EpochSampler

    s = cfg["sft"]
    examples = [encode(tok, r.prompt, r.chosen, cfg["max_length"]) for r in rows]
    data = _Rows(examples, tok.pad_token_id, device)
    sampler = EpochSampler(len(examples), s["batch_size"], seed + 11, drop_last=True)
    n_micro = _micro(sampler.batch_size, min(s["micro_batch"], sampler.batch_size), "sft")
    peft_model = add_lora(model, cfg)

    def micro_loss(step: int, k: int):
        idx = sampler(step).view(n_micro, -1)[k]
        b = data(idx)
        logp = _logps(peft_model, hidden_states(peft_model, b), b["labels"])
        n_tok = (b["labels"][:, 1:] != -100).sum()
        loss = -logp.sum() / n_tok  # token-mean NLL of the responses
        return loss, {"loss": float(loss.detach())}

    hist = _accumulate_steps(
        peft_model, s["steps"], s["lr"], 0.05, micro_loss, n_micro, cfg, device, log, "sft"
    )
    return _strip_lora(peft_model, cfg, merge=True), hist[-1]["loss"]


def train_arm(base: Any, tok: Any, pairs: dict, degree: tuple, pcfg: dict, lam: float, cfg: dict, seed: int,
              device, log, arm: str) -> tuple[Any, Any, list]:  # fmt: skip
    """One arm: a fresh LoRA adapter on ``base`` (the SFT model), DPO (+ lambda * L_SSL); returns
    (peft model, degree head or None, history). Rows [chosen, rejected, degree] share one forward."""
    from spo.spo_loss import DegreeHead, degree_loss, spo_objective
    from xentlab.lm.preference import dpo_loss
    from xentlab.lm.train import concat_batches, hidden_states
    from xentlab.train.loop import EpochSampler

    n_pairs = pairs["n"]
    sampler = EpochSampler(n_pairs, pcfg["pair_batch"], seed, drop_last=True)
    n_micro = _micro(sampler.batch_size, min(pcfg["micro_batch"], sampler.batch_size), "pref")
    use_spo = lam > 0
    policy = add_lora(base, cfg)
    head = None
    if use_spo:
        d_rows, d_labels = degree
        if not d_labels:
            raise ReproError("no degree examples: RAKE found too few phrases in the chosen responses")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 17)
            head = DegreeHead(base.config.hidden_size, pcfg["n_classes"]).to(device)
        d_sampler = EpochSampler(len(d_labels), pcfg["degree_batch"], seed + 29, drop_last=True)
        _micro(d_sampler.batch_size, n_micro, "degree batch vs pair micro-batches")
        d_labels_t = torch.tensor(d_labels, dtype=torch.long, device=device)
    module = torch.nn.ModuleDict({"lm": policy} | ({"head": head} if head is not None else {}))

    def micro_loss(step: int, k: int):
        ids = sampler(step).view(n_micro, -1)[k]
        batches = [pairs["chosen"](ids), pairs["rejected"](ids)]
        if use_spo:
            deg_ids = d_sampler(step).view(n_micro, -1)[k]
            batches.append(d_rows(deg_ids))
        batch = concat_batches(*batches, pad_id=tok.pad_token_id)
        hidden = hidden_states(policy, batch)
        p = len(ids)
        logps = _logps(policy, hidden[: 2 * p], batch["labels"][: 2 * p]).float()
        ref_c, ref_r = pairs["ref_chosen"][ids.to(device)], pairs["ref_rejected"][ids.to(device)]
        pref = dpo_loss(logps[:p], logps[p:], ref_c, ref_r, beta=pcfg["beta"])
        stats = pref.stats()
        ssl = None
        if use_spo:
            logits = head(hidden[2 * p :].float(), batch["labels"][2 * p :]).float()
            target = d_labels_t[deg_ids.to(device)]
            ssl = degree_loss(logits, target)
            stats["degree_loss"] = float(ssl.detach())
            stats["degree_acc"] = float((logits.argmax(-1) == target).float().mean())
        return spo_objective(pref.loss, ssl, lam), stats

    hist = _accumulate_steps(module, pcfg["steps"], pcfg["lr"], pcfg["warmup_frac"], micro_loss, n_micro,
                             cfg, device, log, arm)  # fmt: skip
    return policy, head, hist


@torch.no_grad()
def degree_accuracy(model: Any, head: Any, rows: _Rows, labels: list[int], cfg: dict, device) -> float:
    """Held-out accuracy of the degree head (chance 1 / K)."""
    from xentlab.lm.train import hidden_states

    model.eval()
    head.eval()
    correct, bs = 0, cfg["pref"]["micro_batch"]
    for i in range(0, len(labels), bs):
        b = rows(torch.arange(i, min(len(labels), i + bs)))
        with _autocast(device, cfg):
            pred = head(hidden_states(model, b).float(), b["labels"]).argmax(-1)
        correct += int((pred.cpu() == torch.tensor(labels[i : i + bs])).sum())
    return correct / len(labels)


def responses(model: Any, tok: Any, prompts: list[str], cfg: dict, seed: int) -> dict[str, list[str]]:
    """Greedy and one temperature sample per prompt, each cut at the stop strings."""
    from xentlab.lm.generate import generate

    ev = cfg["eval"]
    texts = [generation_prompt(tok, p) for p in prompts]
    kw = dict(max_new_tokens=ev["max_new_tokens"], batch_size=ev["batch_size"])
    with _autocast(next(model.parameters()).device, cfg):
        greedy = generate(model, tok, texts, **kw).texts
        sampled = generate(
            model, tok, texts, do_sample=True, temperature=ev["temperature"], seed=seed, **kw
        ).texts
    return {
        "greedy": [cut_at_stop(t, ev["stop"]) for t in greedy],
        "sampled": [cut_at_stop(t, ev["stop"]) for t in sampled],
    }


@torch.no_grad()
def reward_scores(path: Path, prompts: list[str], texts: list[str], cfg: dict, device) -> list[float]:
    """The reward model's scalar for each (prompt, response): its single output logit.

    ``reward.input``: "concat" scores the text prompt + " " + response (decoder reward models, e.g.
    a Llama RM trained on HH); "pair" passes (prompt, response) as a text pair (cross-encoder RMs such
    as OpenAssistant's DeBERTa). Long inputs are truncated on the left, keeping the response.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rc = cfg["reward"]
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tok.truncation_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), local_files_only=True, torch_dtype=_dtype(cfg, device)
    ).to(device)
    model.config.pad_token_id = tok.pad_token_id
    if model.config.num_labels != 1:
        raise ReproError(
            f"{ENV_REWARD}: the reward model must have one output, got num_labels={model.config.num_labels}"
        )
    model.eval()
    out = []
    for i in range(0, len(texts), rc["batch_size"]):
        p, t = prompts[i : i + rc["batch_size"]], texts[i : i + rc["batch_size"]]
        if rc["input"] == "pair":
            enc = tok(
                p, t, padding=True, truncation="only_first", max_length=rc["max_length"], return_tensors="pt"
            )
        elif rc["input"] == "concat":
            joined = [a + " " + b for a, b in zip(p, t, strict=True)]
            enc = tok(joined, padding=True, truncation=True, max_length=rc["max_length"], return_tensors="pt")
        else:
            raise ReproError(f"reward.input must be 'concat' or 'pair', got {rc['input']!r}")
        with _autocast(device, cfg):
            logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
        out += logits[:, 0].float().cpu().tolist()
    del model
    return out


# --------------------------------------------------------------------------- one seed


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """SFT start, DPO and DPO + SPO arms with LoRA, all judged by the local reward model."""
    import numpy as np

    from spo.evaluate import win_rate

    model_dir = local_path(
        cfg, "model", ENV_MODEL, needs="a local causal LM directory with its tokenizer (save_pretrained)"
    )
    data_dir = local_path(cfg, "data", ENV_DATA, needs=DATA_LAYOUT)
    rm_dir = local_path(cfg, "reward_model", ENV_REWARD, needs="a local sequence-classification reward model directory (one output)")  # fmt: skip
    device = ctx.device
    train_rows, test_rows = load_split(data_dir, "train"), load_split(data_dir, "test")
    model, tok = load_policy(model_dir, cfg, device)

    # prompts longer than max_prompt_length are dropped (as trl's filter of overlong prompts)
    fits = lambda rs: [r for r in rs if prompt_fits(tok, r.prompt, cfg["max_prompt_length"])]  # noqa: E731
    train_rows, test_rows = fits(train_rows), fits(test_rows)
    rng = random.Random(f"spo-full-{seed}")
    rng.shuffle(train_rows)
    if cfg.get("n_train"):
        train_rows = train_rows[: cfg["n_train"]]
    eval_rows = random.Random("spo-full-eval").sample(
        test_rows, min(cfg["eval"]["n_prompts"], len(test_rows))
    )
    if not train_rows or not eval_rows:
        raise ReproError(f"no train or test prompt fits max_prompt_length={cfg['max_prompt_length']}")
    out: dict[str, Any] = {"n_train_pairs": len(train_rows), "n_eval_prompts": len(eval_rows)}

    if cfg["sft"]["steps"] > 0:
        torch.manual_seed(seed)
        model, out["sft_loss"] = sft(model, tok, train_rows, cfg, seed, device, ctx.log)
    prompts = [r.prompt for r in eval_rows]
    texts = {"sft": responses(model, tok, prompts, cfg, seed + 5)}

    # pairs, reference log-probs under the SFT model, degree data (train: training; test: accuracy)
    pad = tok.pad_token_id
    ml = cfg["max_length"]
    pairs: dict[str, Any] = {
        "n": len(train_rows),
        "chosen": _Rows([encode(tok, r.prompt, r.chosen, ml) for r in train_rows], pad, device),
        "rejected": _Rows([encode(tok, r.prompt, r.rejected, ml) for r in train_rows], pad, device),
    }
    bs = cfg["pref"]["micro_batch"]
    for side in ("chosen", "rejected"):
        pairs[f"ref_{side}"] = sequence_logprobs(model, pairs[side], pairs["n"], bs, cfg, device)
    degree = {}
    for mode in ("key", "control"):
        tr = degree_set(tok, train_rows[: cfg["degree_rows"]], cfg, mode, seed)
        te = degree_set(tok, test_rows[: cfg["degree_eval_rows"]], cfg, mode, seed + 1)
        degree[mode] = (
            _Rows(tr[0], pad, device) if tr[0] else None,
            tr[1],
            _Rows(te[0], pad, device) if te[0] else None,
            te[1],
        )
    out["n_degree_train"] = len(degree["key"][1])

    curves, heads_acc = {}, {}
    for arm, spec in cfg["arms"].items():
        lam = spec["lam"] if spec["degree"] else 0.0
        d_rows, d_labels, d_test, d_test_labels = degree[spec["degree"] or "key"]
        torch.manual_seed(seed)
        policy, head, hist = train_arm(
            model, tok, pairs, (d_rows, d_labels), {**cfg["pref"]}, lam, cfg, seed, device, ctx.log, arm
        )
        curves[arm] = hist
        out[f"{arm}_reward_acc"] = hist[-1]["reward_acc"]
        if head is not None and d_test_labels:
            heads_acc[arm] = degree_accuracy(policy, head, d_test, d_test_labels, cfg, device)
        texts[arm] = responses(policy, tok, prompts, cfg, seed + 5)
        model = _strip_lora(policy, cfg, merge=False)
        del policy, head
        if device.type == "cuda":
            torch.cuda.empty_cache()
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # the judge: every arm's responses to the same prompts, scored by the reward model
    names = list(texts)
    flat = [t for n in names for kind in ("greedy", "sampled") for t in texts[n][kind]]
    scores = reward_scores(rm_dir, prompts * (2 * len(names)), flat, cfg, device)
    k = len(prompts)
    r = {n: {kind: np.array(scores[(2 * i + j) * k : (2 * i + j + 1) * k]) for j, kind in enumerate(("greedy", "sampled"))}
         for i, n in enumerate(names)}  # fmt: skip
    out["sft_reward"] = float(r["sft"]["greedy"].mean())
    out["sft_reward_t07"] = float(r["sft"]["sampled"].mean())
    out["sft_examples"] = texts["sft"]["greedy"][:3]
    for arm in cfg["arms"]:
        out[f"{arm}_reward"] = float(r[arm]["greedy"].mean())
        out[f"{arm}_reward_t07"] = float(r[arm]["sampled"].mean())
        out[f"{arm}_winrate"] = win_rate(r[arm]["greedy"], r["sft"]["greedy"])
        out[f"{arm}_winrate_t07"] = win_rate(r[arm]["sampled"], r["sft"]["sampled"])
        out[f"{arm}_examples"] = texts[arm]["greedy"][:3]
        if arm in heads_acc:
            out[f"{arm}_degree_acc"] = heads_acc[arm]
    out["curves"] = curves
    return out

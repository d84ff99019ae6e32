"""The cpu-scale task: the data set, a code tokenizer, prompts, the tiny Llama and SFT.

Input format (the paper's, Sec. 3): the vulnerable function, a separator, the repaired function.
The separator is the text line ``# fix`` (the tokenizer has no spare special token); the SFT loss
covers only the repaired function and ``</s>`` (the prompt is context).

Tokenizer: a byte-level BPE (``xentlab.data.tokenizer.get_tokenizer``) trained on the train
split's functions only, so that identifiers and keywords are single tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from securefix_rl.lang import Pair, make_dataset

SEP = "# fix\n"
DATA_SEED = 2401  # one data set for every run seed: the seeds vary the model and the RL samples


def prompt_text(p: Pair) -> str:
    from xentlab.data.tokenizer import BOS

    return f"{BOS}{p.vuln}{SEP}"


def response_text(p: Pair) -> str:
    from xentlab.data.tokenizer import EOS

    return f"{p.fixed}{EOS}"


def build_data(cfg: dict) -> dict[str, list[Pair]]:
    return make_dataset(cfg["n_train"], cfg["n_dev"], cfg["n_test"], DATA_SEED)


def build_tokenizer(train: list[Pair], vocab_size: int):
    from xentlab.data.tokenizer import get_tokenizer

    texts = [p.vuln + SEP + p.fixed for p in train[:2000]]
    return get_tokenizer(texts, vocab_size=vocab_size, include_pydoc=False, name="securefix")


def sft_examples(tok: Any, pairs: list[Pair]) -> list:
    from xentlab.lm.train import segments_example

    return [segments_example(tok, [(prompt_text(p), False), (response_text(p), True)]) for p in pairs]


@dataclass
class SFTResult:
    model: Any
    tokenizer: Any
    data: dict[str, list[Pair]]
    loss: float


def train_sft(cfg: dict, seed: int, *, log: Any = None) -> SFTResult:
    """The SFT start model: a tiny Llama trained with cross-entropy on the train split for a
    deliberately short budget (``sft_steps``; see the README: chosen on the dev split so that the
    SFT model includes the security line only part of the time, as in the paper's motivation)."""
    from xentlab.lm.train import LMTrainConfig, fit_lm
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
    from xentlab.train.seeding import seed_everything

    data = build_data(cfg["data"])
    tok = build_tokenizer(data["train"], cfg["vocab_size"])
    seed_everything(seed)
    mcfg = TinyLMConfig(vocab_size=len(tok), max_positions=256, **cfg["model"])
    model = build_tiny_lm(mcfg, tok, seed=seed)
    hist = fit_lm(
        model,
        sft_examples(tok, data["train"]),
        LMTrainConfig(steps=cfg["sft_steps"], batch_size=cfg["sft_batch"], lr=cfg["sft_lr"], log_every=25),
        pad_id=tok.pad_token_id,
        seed=seed,
        on_log=(lambda s, row: log(phase="sft", **row)) if log else None,
    )
    model.eval()
    return SFTResult(model, tok, data, float(hist[-1]["loss"]))

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
    steps: int = 0  # SFT steps actually taken (the per-seed stopping point when ``select`` is on)
    checks: list | None = None  # [(step, dev strict inclusion), ...] seen by the stopping rule


def choose_stop(checks: list[tuple[int, float]], lo: float, hi: float, *, at_cap: bool = False) -> int | None:
    """The per-seed SFT stopping rule (fixed before the rerun; dev split only, never test).

    ``checks`` are the (step, dev strict inclusion) checkpoints so far, in order. Returns the step
    whose model is kept, or None to keep training:
    * the latest checkpoint's rate is in [lo, hi]: keep it;
    * it jumped above hi (the copying transition is sharp): keep whichever of it and the previous
      checkpoint (below lo, else we would have stopped there) is closer to the band's midpoint;
      with no previous checkpoint, keep it;
    * below lo: continue, unless the cap is reached (then keep the cap's model).
    """
    if not checks:
        raise ValueError("choose_stop needs at least one checkpoint")
    step, rate = checks[-1]
    if lo <= rate <= hi:
        return step
    if rate > hi:
        if len(checks) == 1:
            return step
        mid = 0.5 * (lo + hi)
        prev_step, prev_rate = checks[-2]
        return prev_step if abs(prev_rate - mid) < abs(rate - mid) else step
    return step if at_cap else None


def dev_strict_inclusion(model: Any, tok: Any, pairs: list[Pair], max_new_tokens: int) -> float:
    """Greedy repairs of ``pairs``; the fraction that include the reference guard (strict checker)."""
    from securefix_rl.checker import has_exact_guard
    from securefix_rl.evaluate import repair

    outs = repair(model, tok, pairs, max_new_tokens)
    return sum(has_exact_guard(o, p) for o, p in zip(outs, pairs)) / len(pairs)


def train_sft(cfg: dict, seed: int, *, log: Any = None) -> SFTResult:
    """The SFT start model: a tiny Llama trained with cross-entropy on the train split.

    Without ``cfg["select"]`` it trains for ``sft_steps``. With it (the cpu scale), the stopping
    point is chosen per seed on the dev split by ``choose_stop``: the lr schedule is that of a
    ``sft_steps``-step run (the cap); every ``select.every`` steps from ``select.start`` the dev
    strict inclusion of the greedy repairs of the first ``select.n_dev`` dev functions is measured,
    and training stops at the first checkpoint in the band [lo, hi] (the paper's regime: the SFT
    model includes the security line only part of the time). The kept model is restored from its
    checkpoint's weights when the rule picks the previous checkpoint."""
    import copy

    from xentlab.lm.train import BatchStream, LMTrainConfig, fit, lm_loss
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm
    from xentlab.train.seeding import seed_everything

    data = build_data(cfg["data"])
    tok = build_tokenizer(data["train"], cfg["vocab_size"])
    seed_everything(seed)
    mcfg = TinyLMConfig(vocab_size=len(tok), max_positions=256, **cfg["model"])
    model = build_tiny_lm(mcfg, tok, seed=seed)
    tcfg = LMTrainConfig(steps=cfg["sft_steps"], batch_size=cfg["sft_batch"], lr=cfg["sft_lr"], log_every=25)
    stream = BatchStream(
        sft_examples(tok, data["train"]), tcfg.batch_size, pad_id=tok.pad_token_id, seed=seed
    )
    sel = cfg.get("select")
    checks: list[tuple[int, float]] = []
    saved: dict[int, dict] = {}
    chosen: list[int] = []

    def callback(done: int) -> bool:
        if sel is None or done < sel["start"] or (done - sel["start"]) % sel["every"]:
            return False
        rate = dev_strict_inclusion(model, tok, data["dev"][: sel["n_dev"]], sel["max_new_tokens"])
        checks.append((done, rate))
        saved[done] = copy.deepcopy(model.state_dict())
        saved.pop(done - 2 * sel["every"], None)  # only the previous checkpoint can be restored
        if log:
            log(phase="sft_select", step=done, dev_sec_strict=rate)
        pick = choose_stop(checks, sel["lo"], sel["hi"], at_cap=done >= cfg["sft_steps"])
        if pick is None:
            return False
        chosen.append(pick)
        return True

    hist = fit(
        model,
        lambda m, step: lm_loss(m, stream(step)),
        tcfg,
        on_log=(lambda s, row: log(phase="sft", **row)) if log else None,
        callback=callback,
    )
    steps = chosen[0] if chosen else cfg["sft_steps"]
    if chosen and steps != checks[-1][0]:
        model.load_state_dict(saved[steps])
    model.eval()
    return SFTResult(model, tok, data, float(hist[-1]["loss"]), steps=steps, checks=checks or None)

"""Choose the SHIFTED pretraining mixture of the base model on the validation split (never on test).

    uv run --package dco packages/dco/scripts/select_shifted_base.py [1|2|1r]   # round (default 2)

Why (second protocol fix): the base of the previous run was pretrained on 3,850 problems of the
fine-tuning family itself, so CE fine-tuning on 150 more problems of that family could only
overfit (CE's test pass@1 fell 29.9% -> 18.8%), unlike the paper, where fine-tuning on MATH
teaches a broadly pretrained base (pass@1 rises). The base is now pretrained on a shifted mixture
(dco.base.pretrain_pairs): 2-digit sums "23+45" and 2-digit x 1-digit products "6*43" / "43*6"
(the parts of a+f*b, not their composition), plus a fraction ``target_frac`` of fine-tuning-family
problems from the unused train pool (0: absent, 0.05: rare); 3,850 problems in all, as before.

Rule, fixed before running (measured on 500 VALIDATION problems of the fine-tuning family, disjoint
from pool and test; base seed 0, fine-tuning run seed 0):
* candidates: target_frac in ``FRACS`` x pretraining epochs E in ``EPOCHS`` (batch 32, lr 3e-3, 50
  warm-up steps then constant; E = 20 is a checkpoint of the E = 40 run, as in select_base.py);
* for each, CE fine-tuning from that base exactly as the cpu protocol of reproduce.py (n_train=150,
  600 steps, batch 32, lr 3e-3), validation exact pass@1 / pass@256 and greedy accuracy of the base
  and of the fine-tuned model;
* a candidate qualifies when (a) the base's validation pass@1 <= ``MAX_BASE_PASS1`` and its
  validation pass@256 >= ``MIN_BASE_PASS256`` (low pass@1, but coverage well above 0, so the
  coverage effect can be measured), (b) CE fine-tuning raises the validation exact pass@1 by
  >= ``MIN_CE_GAIN`` (fine-tuning teaches), and (c) its pretraining CPU time + ``UNITS_CPU_S`` (the
  12 fine-tuning units) <= ``BUDGET_CPU_S``;
* take the qualifying candidate with the largest gain (b) (ties: smaller E, then smaller
  target_frac); if none qualifies, keep the previous protocol (``chosen`` = null).
Round 2 (``select_shifted_base.py 2``, the default), written after round 1 qualified no candidate,
keeps the rule and its thresholds and replaces the candidates with the fine-tuning family in a
shifted format: "swapped" (the 3,850 unused pool problems with the prompt written product first,
"6*43+7=") and "wide_addend" (3,850 problems with a 2-digit addend, "23+6*43="), ties going to
the earlier candidate. Writes results/shifted_base_selection_round<k>.json.

Round "1r" (``select_shifted_base.py 1r``; session 12, written before it ran): rounds 1 and 2 ran
the CE fine-tuning of (b) with the old loop ("stream" rule, 600 steps, summed sequence loss, betas
(0.9, 0.95), 12 warm-up steps). Of the rule, only (b) depends on the fine-tuning loop: (a) reads the
base alone, and the pretraining (dco.base, "stream" rule) is unchanged, so the bases are the same
weights. Every candidate of round 2 and round 1's target_frac = 0 fail (a) (base validation
pass@256 0.009-0.068 < 0.20), so they cannot qualify under any fine-tuning loop. Round 1r reruns
the two candidates that pass (a), round 1's target_frac = 0.05 at E = 20 and 40, with reproduce.py's
current CE fine-tuning (the official loop, dco.train "refine", REFINE settings, 120 epochs); the rule,
thresholds and tie-break are unchanged (its base metrics must equal round 1's: a check).
Writes results/shifted_base_selection_round1r.json.

Each candidate's base weights are also written to the dco cache under the key that reproduce.py's cpu config for that candidate gives (dco.base.load_base),
so the cpu run reuses the pretrained base instead of training it again (a checkpoint at epoch E
equals a run of E epochs: fixed warm-up steps, constant lr, the same seeded stream).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

FRACS = [0.0, 0.05]
EPOCHS = [20, 40]
# round 2 (written after round 1 qualified no candidate; same rule and thresholds, new candidates):
# the fine-tuning family in a shifted format, "swapped" (prompt "6*43+7=") and "wide_addend"
# (2-digit addends, "23+6*43="); each candidate is a mixture dict (dco.base.pretrain_pairs)
ROUNDS = {
    1: [{"n": 3850, "target_frac": f} for f in FRACS],
    2: [{"n": 3850, "kind": "swapped"}, {"n": 3850, "kind": "wide_addend"}],
    # round 1r: the candidates that pass (a), under the official fine-tuning loop (docstring)
    "1r": [{"n": 3850, "target_frac": 0.05}],
}
MAX_BASE_PASS1 = 0.10
MIN_BASE_PASS256 = 0.20
MIN_CE_GAIN = 0.05
UNITS_CPU_S = 230.0
BUDGET_CPU_S = 720.0
N_PRETRAIN = 3850
BASE = {"epochs": max(EPOCHS), "batch_size": 32, "lr": 3e-3, "warmup_steps": 50, "seed": 0}


def _val_metrics(model, tok, pairs) -> dict:
    from dco.experiment import evaluate_split

    v = evaluate_split(model, tok, pairs, [1, 256])
    return {"val_greedy_acc": v["greedy_acc"], "val_pass@1": v["pass@1"], "val_pass@256": v["pass@256"]}


def _finetune(state: dict, val: list, pairs: list) -> dict:
    """CE fine-tuning of one base with the cpu protocol; validation metrics before and after."""
    import reproduce
    from dco.experiment import build_model, evaluate_split
    from dco.task import examples
    from dco.train import TrainConfig, train

    from xentlab.data.tokenizer import get_byte_tokenizer

    base = reproduce.BASE["cpu"]
    tok = get_byte_tokenizer()
    model = build_model(base["model"], tok, seed=0)
    model.load_state_dict(state)
    before = _val_metrics(model, tok, val)
    tcfg = TrainConfig(**{**base["train"], "n_prime": 1, "eval_every": base["train"]["epochs"]})
    train(model, tok, examples(tok, pairs), tcfg, seed=0, evaluate=lambda ep: {})
    after = _val_metrics(model, tok, val)
    return {
        **{f"base_{k}": v for k, v in before.items()},
        **{f"ce_{k}": v for k, v in after.items()},
        "ce_gain_val_pass@1": after["val_pass@1"] - before["val_pass@1"],
        "ce_gain_val_greedy_acc": after["val_greedy_acc"] - before["val_greedy_acc"],
        "train_greedy_acc": evaluate_split(model, tok, pairs, [1])["greedy_acc"],
    }


def _cache(cpu: dict, states: dict, mixture: dict) -> None:
    """Store each checkpoint as the cached base of the matching reproduce.py config."""
    import io

    from dco.base import _key

    from xentlab.data.cache import atomic_write_bytes, cache_dir

    for epoch, (state, _) in states.items():
        base = {**{k: v for k, v in BASE.items()}, "epochs": epoch, "mixture": mixture}
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(
            cache_dir("dco") / f"base_{_key(cpu['model'], cpu['task'], base)}.pt", buf.getvalue()
        )


def _candidate(mixture: dict) -> list[dict]:
    """Pretrain on ``mixture`` (checkpoints at EPOCHS), then fine-tune each checkpoint."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import reproduce
    from dco.base import pretrain
    from dco.task import build_splits, problem_pairs

    from xentlab.data.tokenizer import get_byte_tokenizer

    torch.set_num_threads(1)
    cpu = reproduce.BASE["cpu"]
    tok = get_byte_tokenizer()
    splits = build_splits({**cpu["task"], "n_val": 500})
    pairs, val = problem_pairs(splits.train), problem_pairs(splits.val)
    t0 = time.process_time()
    states = {}

    def checkpoint(epoch: int, model) -> dict:
        if epoch in EPOCHS:
            states[epoch] = (copy.deepcopy(model.state_dict()), time.process_time() - t0)
            print(f"{mixture} pretrain epoch {epoch}: {time.process_time() - t0:.0f} CPU-s", flush=True)
        return {}

    base = {**BASE, "mixture": mixture, "eval_every": min(EPOCHS)}
    pretrain(cpu["model"], cpu["task"], base, tok, evaluate=checkpoint)
    _cache(cpu, states, mixture)
    rows = []
    for epoch, (state, cpu_s) in sorted(states.items()):
        row = {"mixture": mixture, "pretrain_epochs": epoch, "pretrain_cpu_s": cpu_s}
        row.update(_finetune(state, val, pairs))
        print(row, flush=True)
        rows.append(row)
    return rows


def qualifies(r: dict) -> bool:
    return (
        r["base_val_pass@1"] <= MAX_BASE_PASS1
        and r["base_val_pass@256"] >= MIN_BASE_PASS256
        and r["ce_gain_val_pass@1"] >= MIN_CE_GAIN
        and r["pretrain_cpu_s"] + UNITS_CPU_S <= BUDGET_CPU_S
    )


def main(round_: int | str) -> None:
    rows: list[dict] = []
    cands = ROUNDS[round_]
    with ProcessPoolExecutor(len(cands)) as pool:
        for i, (mix, fut) in enumerate([(m, pool.submit(_candidate, m)) for m in cands]):
            try:  # one failed candidate must not lose the others
                rows.extend({**r, "candidate": i} for r in fut.result())
            except Exception as e:  # noqa: BLE001
                rows.append({"mixture": mix, "candidate": i, "error": repr(e)})
    ok = [r for r in rows if "error" not in r and qualifies(r)]
    # ties: smaller E, then the earlier candidate (round 1: the smaller target_frac)
    best = max(
        ok, key=lambda r: (r["ce_gain_val_pass@1"], -r["pretrain_epochs"], -r["candidate"]), default=None
    )
    chosen = {"mixture": best["mixture"], "pretrain_epochs": best["pretrain_epochs"]} if best else None
    out = {
        "rule": __doc__,
        "round": round_,
        "base": BASE,
        "thresholds": {
            "max_base_val_pass@1": MAX_BASE_PASS1,
            "min_base_val_pass@256": MIN_BASE_PASS256,
            "min_ce_gain_val_pass@1": MIN_CE_GAIN,
            "units_cpu_s": UNITS_CPU_S,
            "budget_cpu_s": BUDGET_CPU_S,
        },
        "rows": rows,
        "chosen": chosen,
    }
    path = Path(__file__).parents[1] / "results" / f"shifted_base_selection_round{round_}.json"
    path.write_text(json.dumps(out, indent=2))
    print("chosen:", chosen)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    arg = sys.argv[1] if len(sys.argv) > 1 else "2"
    main(arg if arg == "1r" else int(arg))

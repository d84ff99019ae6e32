"""Re-select the cpu unlearning lr under the current (version-2, HF Trainer) optimizer, by the rule the
first session applied under version 1's optimizer, on the probe seed only (never a reported seed).

    cd /work/main && OMP_NUM_THREADS=1 uv run python packages/prob-unlearn/scripts/select_lr.py

Rule (README, "lr re-selection", written before this script ran; our closest faithful reading of the
first session's note): on ``PROBE_SEED`` (its own fact bank and fine-tuned model, the cpu config of
reproduce.py), run the base methods GA, GD and NPO (no EO) with the cpu budget and the current optimizer
(``prob_unlearn.experiment.unlearn``) at each candidate lr and keep the LARGEST candidate at which every
base method

  (i)  does not collapse: retain greedy ROUGE-L >= ``MIN_RETAIN_ROUGE``, and
  (ii) unlearns: forget greedy ROUGE-L <= the fine-tuned model's - ``MIN_FORGET_DROP``.

``CANDIDATES`` are the lrs the first session tried; only if none passes, ``EXTENSION`` (ours) is tried
in order; if nothing passes, the lr stays ``CURRENT_LR``. Only greedy answers are scored (the greedy
path of ``prob_unlearn.evaluation.evaluate_model``: same prompts, max_new_tokens, strip, ROUGE-L); no
sampled quantity, bound or ED score is computed. Writes results/lr_selection.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROBE_SEED = 99
CANDIDATES = (1e-3, 3e-4, 1e-4)  # the first session's grid (README), largest first
EXTENSION = (3e-5, 1e-5)  # ours, only if no candidate passes; 1e-5 is the official Phi-1.5 lr
CURRENT_LR = 1e-4
BASE_METHODS = ("ga", "gd", "npo")
MIN_RETAIN_ROUGE = 0.1  # below: collapse ("gibberish on every query", 0.00 in the first probe)
MIN_FORGET_DROP = 0.1  # forget greedy ROUGE-L must fall at least this far below the fine-tuned model's


def passes(rows: list[dict], base_forget: float) -> bool:
    """Criteria (i) and (ii) for the rows of one lr (one row per base method)."""
    if {r["method"] for r in rows} != set(BASE_METHODS):
        raise ValueError(f"need one row per base method {BASE_METHODS}, got {[r['method'] for r in rows]}")
    return all(
        r["retain_greedy_rouge"] >= MIN_RETAIN_ROUGE
        and r["forget_greedy_rouge"] <= base_forget - MIN_FORGET_DROP
        for r in rows
    )


def choose(rows: list[dict], base_forget: float, grid: tuple[float, ...]) -> float | None:
    """The first lr of ``grid`` (ordered by preference: largest candidate first, then the extension)
    whose rows all pass; None if none does."""
    for lr in grid:
        at = [r for r in rows if r["lr"] == lr]
        if at and passes(at, base_forget):
            return lr
    return None


def greedy_scores(model, tok, data: dict, cfg: dict) -> dict:
    """Mean greedy ROUGE-L on the forget and retain evaluation questions (evaluate_model's greedy path)."""
    import numpy as np
    from prob_unlearn.experiment import eval_questions

    from xentlab.lm.generate import generate
    from xentlab.metrics.rouge import rouge_l_many

    forget, retain = eval_questions(data)
    texts = generate(
        model, tok, [q.prompt for q in forget + retain], batch_size=512, max_new_tokens=cfg["max_new_tokens"]
    ).texts
    texts = [t.strip() for t in texts]
    score = [rouge_l_many([t], q.answer)[0] for t, q in zip(texts, forget + retain)]
    return {
        "forget_greedy_rouge": float(np.mean(score[: len(forget)])),
        "retain_greedy_rouge": float(np.mean(score[len(forget) :])),
        "forget_example": texts[0],
        "retain_example": texts[len(forget)],
    }


def main() -> None:
    import reproduce  # the cpu config
    import torch
    from prob_unlearn.experiment import build_data, finetune_base, tokenizer_for, unlearn

    from xentlab.train import seed_everything

    torch.set_num_threads(1)
    cfg = reproduce.CONFIGS["cpu"]
    seed = PROBE_SEED
    seed_everything(seed)  # as the runner does before a unit
    t0, c0 = time.time(), time.process_time()
    tok = tokenizer_for(cfg["vocab_size"])
    data = build_data(cfg, seed)
    base = finetune_base(cfg, tok, data, seed)
    with torch.no_grad():
        base_scores = greedy_scores(base, tok, data, cfg)
    timing = {"finetune_cpu_s": time.process_time() - c0, "finetune_wall_s": time.time() - t0}
    print("fine-tuned:", base_scores, timing, flush=True)
    base_forget = base_scores["forget_greedy_rouge"]

    rows: list[dict] = []

    def run_lr(lr: float) -> None:
        for method in BASE_METHODS:
            t1, c1 = time.time(), time.process_time()
            variant = {"name": f"{method}@{lr:g}", "method": method, "eo": False, "positions": "answer"}
            try:
                model = unlearn(base, tok, data, {**cfg, "lr": lr}, variant, seed)
                with torch.no_grad():
                    row = greedy_scores(model, tok, data, cfg)
            except FloatingPointError as err:  # a diverged run is a collapse
                row = {"forget_greedy_rouge": 0.0, "retain_greedy_rouge": 0.0, "error": str(err)}
            row = {"lr": lr, "method": method, **row}
            row.update(cpu_s=time.process_time() - c1, wall_s=time.time() - t1)
            rows.append(row)
            print(row, flush=True)

    for lr in CANDIDATES:
        run_lr(lr)
    grid = CANDIDATES
    chosen = choose(rows, base_forget, grid)
    if chosen is None:
        for lr in EXTENSION:
            run_lr(lr)
            grid = grid + (lr,)
            chosen = choose(rows, base_forget, grid)
            if chosen is not None:
                break
    out = {
        "rule": __doc__,
        "probe_seed": seed,
        "candidates": list(CANDIDATES),
        "extension": list(EXTENSION),
        "min_retain_rouge": MIN_RETAIN_ROUGE,
        "min_forget_drop": MIN_FORGET_DROP,
        "base": base_scores,
        "rows": rows,
        "passes": {f"{lr:g}": passes([r for r in rows if r["lr"] == lr], base_forget) for lr in grid},
        "chosen": chosen,
        "lr": chosen if chosen is not None else CURRENT_LR,
        "keeps_current_lr": chosen == CURRENT_LR,
        "timing": {**timing, "total_cpu_s": time.process_time() - c0, "total_wall_s": time.time() - t0},
    }
    path = Path(__file__).parents[1] / "results" / "lr_selection.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    path.chmod(0o644)
    print("chosen lr:", chosen, "->", out["lr"], flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    main()

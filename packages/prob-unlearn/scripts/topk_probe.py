"""Second fidelity audit, a measurement (not a claim, not part of results/cpu): how much does the official
sampler's top-k cut change the cpu-scale sampled metrics?

The official ``sampling.py`` samples with top_p 0.9 and temperature 1 and sets no ``top_k``, so transformers'
``GenerationConfig`` default top_k = 50 applies; the cpu configs of versions 1-2 sampled without a top-k cut
(version 3 samples with it).
Seed 0 only (a reported seed, but nothing here is selected on it), GA and NPO without EO (the flattest
forget distributions), each model evaluated twice with the evaluation block of the experiment: without a
top-k cut (top_k None, the sampler of versions 1-2) and with top_k = 50 (the cpu config since version 3).
``committed_seed0`` copies the committed unit ``results/cpu/units/unlearn/seed0.json``: under version 2 it
equalled the ``no_topk`` arm (the committed ``results/topk_probe.json`` was written then); since version 3
it must equal the ``topk50`` arm. Output: ``results/topk_probe.json``.

    OMP_NUM_THREADS=1 uv run --package prob-unlearn python packages/prob-unlearn/scripts/topk_probe.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from prob_unlearn.experiment import build_data, evaluate, finetune_base, tokenizer_for, unlearn

from xentlab.testing import load_reproduce

ROOT = Path(__file__).resolve().parents[1]

KEYS = ["greedy_rouge", "sample_rouge", "m_mu", "m_sigma", "ed", "m_bin", "sample_leak", "any_leak",
        "best_of_n_rouge"]  # fmt: skip


def main() -> None:
    t0 = time.process_time()
    torch.set_num_threads(1)
    repro = load_reproduce(ROOT / "reproduce.py")
    cfg = repro.CONFIGS["cpu"]
    seed = 0
    tok = tokenizer_for(cfg["vocab_size"])
    data = build_data(cfg, seed)
    base = finetune_base(cfg, tok, data, seed)
    out = {}
    for v in [x for x in repro.VARIANTS if x["name"] in ("ga", "npo")]:
        model = unlearn(base, tok, data, cfg, v, seed)
        with torch.no_grad():
            a = evaluate(model, tok, data, {**cfg, "top_k": None}, seed)
            b = evaluate(model, tok, data, {**cfg, "top_k": 50}, seed)
        out[v["name"]] = {"no_topk": {k: a[k] for k in KEYS}, "topk50": {k: b[k] for k in KEYS}}
        print(v["name"], json.dumps(out[v["name"]]), flush=True)
    committed = json.loads((ROOT / "results/cpu/units/unlearn/seed0.json").read_text())["metrics"]
    out["committed_seed0"] = {n: {k: committed[f"{n}_{k}"] for k in KEYS} for n in ("ga", "npo")}
    out["cpu_s"] = time.process_time() - t0
    (ROOT / "results/topk_probe.json").write_text(json.dumps(out, indent=1))
    print("cpu_s", out["cpu_s"])


if __name__ == "__main__":
    main()

"""One (method, seed) unit at cpu/smoke scale: a tiny char-level Llama (a pretrained base, dco.base,
or a fresh init) trained on the direct-answer arithmetic train set with CE (N' = 1) or DCO (N'), evaluated every ``eval_every``
epochs on the test split (exact pass@N for every N in ``ns``, the greedy confidence histogram) and on
the train set, with a sampling cross-check of the exact pass@N at the final epoch.

cfg: {"task": dco.task.build_splits config, "model": xentlab TinyLMConfig fields, "train":
dco.train.TrainConfig fields, "ns": [N...], "crosscheck": {"n_problems", "n_samples", "ks"} or None,
"n_train_eval": train problems evaluated, "base": dco.base pretraining config or None (train from
scratch)}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HIST_BINS = np.linspace(0.0, 1.0, 11)  # confidence bins of the Fig. 1 analogue


def build_model(cfg: dict, tokenizer: Any, seed: int):
    from xentlab.models.tiny_lm import TinyLMConfig, build_tiny_lm

    return build_tiny_lm(TinyLMConfig(vocab_size=len(tokenizer), **cfg), tokenizer, seed=seed)


def exact_pass_at(log_p, ns) -> dict[str, float]:
    from xentlab.metrics import pass_at_n_exact

    return {f"pass@{n}": float(np.mean(pass_at_n_exact(log_p.numpy(), n, log_prob=True))) for n in ns}


def evaluate_split(model: Any, tok: Any, pairs: list, ns: list[int]) -> dict[str, Any]:
    """Exact pass@N, the greedy accuracy and the greedy-confidence histogram of one split."""
    from dco.evaluate import greedy, sequence_logprobs

    log_p = sequence_logprobs(model, tok, pairs)
    out: dict[str, Any] = exact_pass_at(log_p, ns)
    g = greedy(model, tok, pairs)
    conf, correct = np.asarray(g["confidence"]), np.asarray(g["correct"], dtype=bool)
    out["greedy_acc"] = float(correct.mean())
    out["greedy_conf_mean"] = float(conf.mean())
    out["hist_correct"] = np.histogram(conf[correct], HIST_BINS)[0].tolist()
    out["hist_wrong"] = np.histogram(conf[~correct], HIST_BINS)[0].tolist()
    out["_log_p"], out["_conf"], out["_correct"] = log_p, conf, correct
    return out


def run_unit(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    from dco.task import build_splits, examples, problem_pairs
    from dco.train import TrainConfig, train
    from xentlab.data.tokenizer import get_byte_tokenizer
    from xentlab.models.tiny_lm import count_parameters

    tok = get_byte_tokenizer()
    splits = build_splits(cfg["task"])
    train_pairs, test_pairs = problem_pairs(splits.train), problem_pairs(splits.test)
    train_eval_pairs = train_pairs[: cfg.get("n_train_eval", 500)]
    if cfg.get("base"):  # the shared pretrained base (dco.base), else a fresh init with the run seed
        from dco.base import load_base

        model = load_base(cfg["model"], cfg["task"], cfg["base"], tok).to(ctx.device)
    else:
        model = build_model(cfg["model"], tok, seed).to(ctx.device)
    tcfg = TrainConfig(**cfg["train"])
    ns = list(cfg["ns"])
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def evaluate(epoch: int) -> dict[str, Any]:
        test = evaluate_split(model, tok, test_pairs, ns)
        tr = evaluate_split(model, tok, train_eval_pairs, [1])
        row = {"epoch": epoch, **{k: v for k, v in test.items() if not k.startswith("_")}}
        row["train_pass@1"], row["train_greedy_acc"] = tr["pass@1"], tr["greedy_acc"]
        row["train_conf_mean"] = tr["greedy_conf_mean"]
        ctx.log(step=epoch, **{k: v for k, v in row.items() if isinstance(v, float)})
        curve.append(row)
        last.clear()
        last.update(test)
        return row

    counters: dict[str, Any] = {}

    def on_log(**r: Any) -> None:
        counters.update(r)
        ctx.log(**r)

    train(model, tok, examples(tok, train_pairs), tcfg, seed=seed, evaluate=evaluate, on_log=on_log)
    final = curve[-1]
    out: dict[str, Any] = {k: v for k, v in final.items() if isinstance(v, float)}
    for k in [f"pass@{n}" for n in ns]:  # peak over the evaluated epochs and the drop from it
        values = [row[k] for row in curve]
        out[f"peak_{k}"] = max(values)
        out[f"drop_from_peak_{k}"] = max(values) - final[k]
        out[f"epoch0_{k}"] = curve[0][k]
    # claim (a): pass@1 at the final epoch minus pass@1 at the epoch where pass@256 (largest N) peaked
    big = f"pass@{max(ns)}"
    at_peak = max(range(len(curve)), key=lambda i: (curve[i][big], -i))
    out[f"pass@1_final_minus_at_peak_{big}"] = final["pass@1"] - curve[at_peak]["pass@1"]
    out[f"peak_epoch_{big}"] = float(curve[at_peak]["epoch"])
    # optimizer steps taken and candidates replaced (F <= epsilon) over the whole run ("refine" rule)
    for k, name in (("steps", "optimizer_steps"), ("replaced", "replaced")):
        if k in counters:
            out[name] = float(counters[k])
    out["n_params"] = count_parameters(model)
    out["n_train"] = len(train_pairs)
    out["n_test"] = len(test_pairs)
    out["curve"] = curve
    out["final_confidence"] = last["_conf"].tolist()
    out["final_correct"] = last["_correct"].astype(int).tolist()
    if cfg.get("crosscheck"):
        out.update(crosscheck(model, tok, test_pairs, last["_log_p"], cfg["crosscheck"], seed))
    return out


def crosscheck(model: Any, tok: Any, pairs: list, log_p, cc: dict, seed: int) -> dict[str, Any]:
    """Exact pass@k vs the unbiased estimator from ``n_samples`` temperature-1 samples on the first
    ``n_problems`` test problems (a sample counts when it is exactly the reference answer + EOS)."""
    from dco.evaluate import sample_correct_counts
    from xentlab.metrics import mean_pass_at_k, pass_at_n_exact

    m = min(cc["n_problems"], len(pairs))
    counts = sample_correct_counts(model, tok, pairs[:m], n=cc["n_samples"], seed=10_000 + seed)
    est = mean_pass_at_k([cc["n_samples"]] * m, counts, cc["ks"])
    out: dict[str, Any] = {}
    for k in cc["ks"]:
        exact = float(np.mean(pass_at_n_exact(log_p[:m].numpy(), k, log_prob=True)))
        out[f"xcheck_exact_pass@{k}"] = exact
        out[f"xcheck_sampled_pass@{k}"] = est[k]
        out[f"xcheck_absdiff_pass@{k}"] = abs(est[k] - exact)
    return out

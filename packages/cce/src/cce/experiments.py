"""The experiments of the reproduction, one top-level function per experiment (run per seed).

* ``memory_time``: loss memory and time of every method against V (the paper's Table 1, scaled
  to a CPU; at ``--scale full`` its exact setting on a GPU).
* ``lm``: a tiny LM trained with naive CE, with CCE (filtered backward, the default) and with exact
  CCE (no filtering) from the same seed (convergence, paper Fig. 5 "identical curves"), in fp32
  and in bf16 (where filtering skips tiles), then gradient filtering on its real softmax with the
  vocabulary sorted, in its own order and in a random order (Sec. 4.3).
"""

from __future__ import annotations

import json
import math
import sys
import time

import torch
import torch.nn.functional as F

from cce.bench import LABELS, _inputs, measure, run_fresh
from cce.tinylm import TinyGPT, TinyGPTConfig, batches, word_corpus
from xentlab.kernels import linear_cross_entropy, tile_keep_mask
from xentlab.kernels.filtering import resolve_filter_eps, vocab_order

# ----------------------------------------------------------------------------------------------
# (a) memory and time against V
# ----------------------------------------------------------------------------------------------


def _fp64_loss(n, d, v, dtype, device, seed, chunk=128):
    """The float64 mean loss of the benchmark inputs, over token chunks (never N x V at once)."""
    e, c, t = _inputs(n, d, v, dtype, device, seed)
    e, c = e.detach().double(), c.detach().double()
    total = 0.0
    for i in range(0, n, chunk):
        total += F.cross_entropy(e[i : i + chunk] @ c.T, t[i : i + chunk], reduction="sum").item()
    return total / n


def headline(out: dict, ours: str, official: str, vs) -> dict:
    """The claims' ratios at the largest V, from the per-method metrics ``out`` (keys
    ``<method>_<key>_v<V>``).  A ratio whose method was not measured at this scale (not in its
    list, or unavailable) is left out."""
    naive, vmax, vmin = "naive", max(vs), min(vs)

    def get(m, key, v=vmax):
        return out.get(f"{m}_{key}_v{v}", math.nan)

    head = {
        "ours_fwbw_over_lower_bound": get(ours, "fwbw_mb") / out.get(f"lower_bound_mb_v{vmax}", math.nan),
        "naive_over_ours_fwbw_mem": get(naive, "fwbw_mb") / get(ours, "fwbw_mb"),
        "naive_over_ours_fw_mem": get(naive, "fw_mb") / get(ours, "fw_mb"),
        "ours_fw_mem_growth": get(ours, "fw_mb") / get(ours, "fw_mb", vmin),
        "naive_fw_mem_growth": get(naive, "fw_mb") / get(naive, "fw_mb", vmin),
        "ours_loss_err": get(ours, "loss_err_fp64"),
        "ours_time_over_naive": get(ours, "fwbw_ms") / get(naive, "fwbw_ms"),
        "ours_time_over_compile": get(ours, "fwbw_ms") / get("torch_compile", "fwbw_ms"),
        "token_chunks_over_ours_mem": get("token_chunks", "fwbw_mb") / get(ours, "fwbw_mb"),
        # the scale's official method: impl="torch_compile" on CPU; at --scale full the official
        # Triton `cce`, i.e. a fidelity check of our kernels' memory (no claim reads it there)
        "official_over_ours_mem": get(official, "fwbw_mb") / get(ours, "fwbw_mb"),
        # paper Table 1's "Liger Kernels" row; Liger-Kernel is measured at --scale full only
        "liger_over_ours_mem": get("liger", "fwbw_mb") / get(ours, "fwbw_mb"),
    }
    return {k: v for k, v in head.items() if math.isfinite(v)}


def memory_time(cfg: dict, seed: int, ctx) -> dict:
    """Each method in a fresh process (``cce.bench``); headline ratios at the largest V."""
    device = str(ctx.device) if cfg.get("device") == "auto" else cfg["device"]
    n, d, vs = cfg["n"], cfg["d"], cfg["vs"]
    rows, unavailable = [], {}
    for method in cfg["methods"]:
        t0 = time.perf_counter()
        if cfg.get("fresh_process", True):
            # the full scale bounds each method (config "method_timeout_s"), so that one that hangs on the
            # lent GPU leaves the others their time; the cpu scale keeps run_fresh's default
            limit = {"timeout": cfg["method_timeout_s"]} if "method_timeout_s" in cfg else {}
            got = run_fresh(method, n, d, vs, cfg["dtype"], device, seed, cfg["reps"], cfg["sub"], **limit)
        else:  # smoke: the pipeline only, in this process (a fresh one costs an import of torch)
            got = measure(
                method, n, d, vs, getattr(torch, cfg["dtype"]), torch.device(device), seed, 1, cfg["sub"]
            )
        if "error" in got[0]:
            unavailable[method] = got[0]["error"]
        else:
            rows += got
        # every method's numbers go to the unit's log as soon as they exist, so a run stopped by a
        # time limit (a lent GPU's 10-minute command) still leaves what it measured
        ctx.log(method=method, seconds=time.perf_counter() - t0, rows=got)
        print(f"[memory_time seed {seed}] {method}: {json.dumps(got)}", file=sys.stderr, flush=True)
    ref = {v: _fp64_loss(n, d, v, getattr(torch, cfg["dtype"]), device, seed) for v in vs}

    out: dict = {"rows": rows, "unavailable": unavailable}
    for r in rows:
        m, v = r["method"], r["v"]
        r["loss_err_fp64"] = abs(r["loss"] - ref[v])
        for key in ("fw_mb", "fwbw_mb", "fw_ms", "bw_ms", "fwbw_ms", "loss_err_fp64"):
            out[f"{m}_{key}_v{v}"] = r[key]
        out[f"{m}_grad_err_v{v}"] = max(r["de_err"], r["dc_err"])
        out[f"lower_bound_mb_v{v}"] = r["lower_bound_mb"]

    out.update(headline(out, cfg["ours"], cfg["official"], vs))
    return out


# ----------------------------------------------------------------------------------------------
# (b) convergence and (c) filtering, on a tiny LM
# ----------------------------------------------------------------------------------------------


# the training runs in bf16 (``*_bf16``): the paper's Fig. 5 setting as its training script
# (apple/ml-cross-entropy training/train.py) has it: the model is loaded with
# ``torch_dtype=torch.bfloat16`` (bf16 weights, AdamW on them, no fp32 master copy) and trained
# with HF's Trainer (bf16=True); its "torch.compile" baseline forms the logits in bf16 and upcasts
# them to fp32 for the loss, CCE reads the bf16 hidden states and classifier directly
_BF16_KINDS = ("naive_bf16", "cce_bf16", "cce_exact_bf16")


def train_skip_fraction(h: torch.Tensor, w: torch.Tensor, ids: torch.Tensor, eps: float) -> float:
    """The fraction of 128 x 128 tiles of S - onehot that CCE's filtered backward skips on this
    batch (Sec. 4.3), recomputed beside it as ``impl="torch"`` forms them: fp32 logits of the
    (bf16) operands, the shifted tokens (e[t] predicts ids[t+1]) as rows, the vocabulary in the
    walk order ``argsort(mean logit)``, tiles from row 0 and column 0 (the vocabulary chunk of the
    backward is a multiple of 128 wide, so its tiles are these)."""
    with torch.no_grad():
        e = h[:, :-1].reshape(-1, h.shape[-1]).float()
        t = ids[:, 1:].reshape(-1)
        z = e @ w.float().T
        g = torch.softmax(z, 1)
        g[torch.arange(t.numel()), t] -= 1
        g = g[:, vocab_order(z.sum(0))]
        return 1.0 - tile_keep_mask(g, eps).float().mean().item()


def _train(cfg, train_ids, seed, loss_kind, ctx, skips: list | None = None):
    """Train the tiny GPT ``cfg["steps"]`` steps with one loss; returns (model, loss curve, s per
    step).  ``skips``: for a filtered CCE run, receives (step, fraction of tiles skipped) every
    ``cfg["skip_every"]`` steps."""
    torch.manual_seed(seed)  # same initialisation for both losses
    model = TinyGPT(TinyGPTConfig(cfg["vocab"], cfg["hidden"], cfg["layers"], cfg["heads"], cfg["context"]))
    if loss_kind == "naive_fp64":
        # the ground truth the fp32 curves are measured against: the same initial weights (cast
        # exactly) and batches, everything computed in float64
        model = model.double()
    if loss_kind in _BF16_KINDS:
        model = model.bfloat16()  # the same initial weights rounded to bf16 (train.py's torch_dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.0)
    curve, t0 = [], time.perf_counter()
    data = batches(train_ids, cfg["batch"], cfg["context"], cfg["steps"], seed)  # same batches
    for step, ids in enumerate(ctx.progress(data, desc=f"train {loss_kind}")):
        h = model(ids)
        w = model.head.weight
        if loss_kind in ("naive", "control", "naive_fp64", "naive_bf16"):
            logits = (h[:, :-1] @ w.T).reshape(-1, w.shape[0])  # (B (T-1), V), materialised
            tgt = ids[:, 1:].reshape(-1)
            if loss_kind == "control":
                # the same loss over the tokens in another order: identical math, different fp32
                # rounding (the mean and the dW accumulation sum in another order)
                perm = torch.randperm(tgt.numel(), generator=torch.Generator().manual_seed(step))
                logits, tgt = logits[perm], tgt[perm]
            # bf16: the logits are rounded to bf16 by the matmul and upcast for the loss, as the
            # official torch.compile baseline and transformers' loss do
            loss = F.cross_entropy(logits.float() if logits.dtype == torch.bfloat16 else logits, tgt)
        else:  # e[t] predicts ids[t+1]; "cce*": filtered backward (default), "cce_exact*": no filtering
            eps = None if loss_kind.startswith("cce_exact") else "auto"  # auto: eps(bf16)/32 = 2^-12 in bf16
            loss = linear_cross_entropy(h, w, ids, shift=1, impl="torch", filter_eps=eps)
            if skips is not None and eps is not None and step % cfg.get("skip_every", 10) == 0:
                skips.append((step, train_skip_fraction(h, w, ids, resolve_filter_eps("auto", h.dtype))))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(loss.item())
        if step % 50 == 0:
            ctx.log(step=step, **{f"loss_{loss_kind}": curve[-1]})
    return model, curve, (time.perf_counter() - t0) / cfg["steps"]


@torch.no_grad()
def _val_loss(model, val_ids, cfg):
    ids = torch.stack([val_ids[i : i + cfg["context"]] for i in range(0, cfg["val_tokens"], cfg["context"])])
    h = model(ids)
    return linear_cross_entropy(h, model.head.weight, ids, shift=1, impl="torch").item()


def filtering_study(
    e: torch.Tensor,
    c: torch.Tensor,
    t: torch.Tensor,
    eps_by_name: dict,
    random_order: torch.Tensor | None = None,
) -> dict:
    """Skip rate of 128 x 128 tiles of S - onehot and the gradient error it causes, with the
    vocabulary sorted by mean logit (CCE, tag ``sorted``), in its original order (``unsorted``:
    the tiny LM's ids are frequency-ranked, so this is close to sorted already) and, when
    ``random_order`` (a permutation of the vocabulary) is given, in that order (``random``: the
    order-agnostic baseline of Sec. 4.3's argument that sorting groups the likely tokens)."""
    e, c = e.float(), c.float()
    z = e.double() @ c.double().T
    g = torch.softmax(z, 1) - F.one_hot(t, c.shape[0]).double()
    orders = {"sorted": torch.argsort(z.mean(0)), "unsorted": None}
    if random_order is not None:
        orders["random"] = random_order
    out = {}

    def grads(eps, tag):
        if tag == "sorted":  # the backward sorts by itself
            cc, tt, sort_vocab = c, t, True
        elif orders[tag] is None:
            cc, tt, sort_vocab = c, t, False
        else:  # walk the vocabulary in the given order: permute the classifier rows and the targets
            perm = orders[tag]
            rank = torch.empty_like(perm)
            rank[perm] = torch.arange(perm.numel())
            cc, tt, sort_vocab = c[perm], rank[t], False
        ee, cc = e.clone().requires_grad_(), cc.clone().requires_grad_()
        linear_cross_entropy(ee, cc, tt, impl="torch", filter_eps=eps, sort_vocab=sort_vocab).backward()
        dc = cc.grad
        if tag not in ("sorted", "unsorted") and orders[tag] is not None:
            dc = torch.empty_like(dc).index_copy_(0, orders[tag], dc)  # back to the vocabulary's order
        return torch.cat([ee.grad.flatten(), dc.flatten()])

    exact = grads(None, "unsorted")
    # yardsticks at the precision bf16 filtering is sized for: the exact gradient rounded to bf16
    # (the best a bf16 result can be), and plain PyTorch CE run in bf16 (the baseline's own error)
    out["bf16_rounding_rel_err"] = ((exact.bfloat16().float() - exact).norm() / exact.norm()).item()
    eb, cb = e.bfloat16().requires_grad_(), c.bfloat16().requires_grad_()
    F.cross_entropy((eb @ cb.T).float(), t).backward()
    plain = torch.cat([eb.grad.float().flatten(), cb.grad.float().flatten()])
    out["bf16_torch_rel_err"] = ((plain - exact).norm() / exact.norm()).item()
    out["softmax_below_bf16_eps"] = (
        (torch.softmax(z, 1) < torch.finfo(torch.bfloat16).eps / 32).double().mean().item()
    )
    for name, eps in eps_by_name.items():
        for tag, order in orders.items():
            gg = g if order is None else g[:, order]
            out[f"skip_{tag}_{name}"] = 1.0 - tile_keep_mask(gg.float(), eps).float().mean().item()
            diff = grads(eps, tag) - exact
            out[f"grad_rel_err_{tag}_{name}"] = (diff.norm() / exact.norm()).item()
    return out


def lm(cfg: dict, seed: int, ctx) -> dict:
    train_ids, val_ids, _ = word_corpus(cfg["vocab"])
    m_naive, curve_naive, s_naive = _train(cfg, train_ids, seed, "naive", ctx)
    m_cce, curve_cce, s_cce = _train(cfg, train_ids, seed, "cce", ctx)
    diffs = [abs(a - b) for a, b in zip(curve_naive, curve_cce)]
    out = {
        "curve_max_abs_diff": max(diffs),
        "curve_max_abs_diff_first100": max(diffs[:100]),
        "final_loss_naive": curve_naive[-1],
        "final_loss_cce": curve_cce[-1],
        "val_loss_naive": _val_loss(m_naive, val_ids, cfg),
        "val_loss_cce": _val_loss(m_cce, val_ids, cfg),
        "s_per_step_naive": s_naive,
        "s_per_step_cce": s_cce,
        "curve_naive": curve_naive,
        "curve_cce": curve_cce,
    }
    out["val_loss_abs_diff"] = abs(out["val_loss_naive"] - out["val_loss_cce"])
    # the paper's convergence runs use CCE-Kahan-Full-C, i.e. no filtering of dC; the closest
    # variant here is the exact backward (no filtering at all, fp32 accumulation)
    _, curve_exact, _ = _train(cfg, train_ids, seed, "cce_exact", ctx)
    out["exact_curve_max_abs_diff"] = max(abs(a - b) for a, b in zip(curve_naive, curve_exact))
    out["curve_cce_exact"] = curve_exact
    if cfg.get("control", False):
        # how far two fp32 runs of the *same* loss drift apart when only the rounding differs
        _, curve_ctl, _ = _train(cfg, train_ids, seed, "control", ctx)
        out["control_curve_max_abs_diff"] = max(abs(a - b) for a, b in zip(curve_naive, curve_ctl))
        out["curve_control"] = curve_ctl
    if cfg.get("fp64", False):
        # "identical" in fp32 can only mean "as close to the exact curve as naive fp32 CE is": the
        # official tests' criterion for one step (no worse than PyTorch at that dtype), applied to
        # the whole training curve with float64 training as the exact curve
        _, curve64, _ = _train(cfg, train_ids, seed, "naive_fp64", ctx)
        for tag, curve in (("naive", curve_naive), ("cce", curve_cce), ("cce_exact", curve_exact)):
            out[f"fp64_dev_{tag}"] = max(abs(a - b) for a, b in zip(curve, curve64))
        out["fp64_dev_exact_over_naive"] = out["fp64_dev_cce_exact"] / out["fp64_dev_naive"]
        out["fp64_dev_filtered_over_naive"] = out["fp64_dev_cce"] / out["fp64_dev_naive"]
        out["curve_naive_fp64"] = curve64
    if cfg.get("bf16", False):
        # the paper's Fig. 5 precision (bf16 weights, see _BF16_KINDS): naive CE, exact CCE and
        # CCE with its default filter eps(bf16)/32 = 2^-12, at which tiles are really skipped
        skips: list = []
        curves = {kind: _train(cfg, train_ids, seed, kind, ctx, skips=skips)[1] for kind in _BF16_KINDS}
        for kind, curve in curves.items():
            out[f"curve_{kind}"] = curve
            out[f"final_loss_{kind}"] = curve[-1]
        out["bf16_cce_vs_naive_max_abs_diff"] = max(
            abs(a - b) for a, b in zip(curves["naive_bf16"], curves["cce_bf16"])
        )
        fracs = [f for _, f in skips]
        out["bf16_train_skip_frac_mean"] = sum(fracs) / len(fracs)
        out["bf16_train_skip_frac_last"] = fracs[-1]
        out["bf16_train_skips"] = [list(x) for x in skips]
        if "curve_naive_fp64" in out:
            # the claim convergence-bf16-filtered: as convergence-vs-fp64, each curve's largest
            # distance from the float64 curve, relative to naive CE's in the same precision
            for kind, curve in curves.items():
                out[f"fp64_dev_{kind}"] = max(abs(a - b) for a, b in zip(curve, out["curve_naive_fp64"]))
            out["bf16_dev_filtered_over_naive"] = out["fp64_dev_cce_bf16"] / out["fp64_dev_naive_bf16"]
            out["bf16_dev_exact_over_naive"] = out["fp64_dev_cce_exact_bf16"] / out["fp64_dev_naive_bf16"]

    # (c) the trained CCE model's real softmax on held-out text
    k = cfg["filter_tokens"]
    ids = torch.stack([val_ids[i : i + cfg["context"]] for i in range(0, k + cfg["context"], cfg["context"])])
    with torch.no_grad():
        h = m_cce(ids)
    e = h[:, :-1].reshape(-1, h.shape[-1])[:k]
    t = ids[:, 1:].reshape(-1)[:k]
    eps = {name: torch.finfo(getattr(torch, name)).eps / 32 for name in ("bfloat16", "float16", "float32")}
    # a random order of the vocabulary (fixed by the seed), the order-agnostic "unsorted" baseline
    random_order = torch.randperm(cfg["vocab"], generator=torch.Generator().manual_seed(seed))
    out.update(filtering_study(e, m_cce.head.weight.detach(), t, eps, random_order=random_order))
    out["filter_below_bf16_rounding"] = out["grad_rel_err_sorted_bfloat16"] < out["bf16_rounding_rel_err"]
    out["filter_below_bf16_torch"] = out["grad_rel_err_sorted_bfloat16"] <= out["bf16_torch_rel_err"]
    out["sorting_gain_bf16"] = out["skip_sorted_bfloat16"] - out["skip_unsorted_bfloat16"]
    for name in ("bfloat16", "float16"):
        out[f"sorting_gain_vs_random_{name}"] = out[f"skip_sorted_{name}"] - out[f"skip_random_{name}"]
    return out


__all__ = ["LABELS", "filtering_study", "headline", "lm", "memory_time"]

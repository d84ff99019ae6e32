"""One cpu-scale unit: pretrain on domain A with MLE, then fine-tune on domain B with MLE and with EMO
from the same checkpoint, for the same steps and the same batches; evaluate both exactly against B.

Metrics (B's true generator is known, so both are exact, not model-based):
* test NLL (nats/token) on held-out B sequences and its perplexity: the recall side;
* mean true-source log-likelihood per token, ln P_B(x_t | x_{t-2}, x_{t-1}), of unbiased samples from
  each model, continuing 2-token prompts from B: the precision side (what MAUVE's precision component
  measures in the paper, here without an embedding model).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from emo.loss import RATIO_EPS, emo_cost, emo_loss, make_cost_embedding, mle_loss
from emo.optim import finetune_optimizer
from emo.source import SynonymSource, SynonymSourceConfig
from xentlab.models.small_decoder import DecoderLM, LMShape, sample


@dataclass(frozen=True)
class RunConfig:
    """source / model: see their configs. seq_len: training window. Pretraining on A: n_pretrain
    sequences, pretrain_steps Adam steps at pretrain_lr (linear decay to 0), batch. Fine-tuning on B:
    n_finetune sequences, finetune_steps at finetune_lr with finetune_schedule ("linear": AdamW without
    weight decay, lr decayed linearly to 0 with no warm-up, as the official run_lm.py; "constant": the
    constant-lr Adam of the first version); the same steps, lr and batches for MLE and EMO.
    Evaluation: n_test held-out B sequences; n_samples continuations of sample_len tokens after a
    2-token prompt. diag_ratio_cap: a diagnostic third fine-tuning arm ("emocap", no claim) with the capped
    weight min(sg(CE / EMO), cap) of the official emo_patch.py at 54a7880 / EMOLoss mode=1 (emo.loss);
    None: no such arm."""

    source: SynonymSourceConfig = field(default_factory=SynonymSourceConfig)
    model: LMShape = field(
        default_factory=lambda: LMShape(vocab_size=64, hidden=64, layers=2, heads=4, max_positions=32)
    )
    seq_len: int = 32
    batch: int = 32
    n_pretrain: int = 4000
    pretrain_steps: int = 600
    pretrain_lr: float = 2e-3
    n_finetune: int = 500
    finetune_steps: int = 200
    finetune_lr: float = 5e-4
    finetune_schedule: str = "linear"
    n_test: int = 500
    n_samples: int = 500
    sample_len: int = 30
    log_every: int = 20
    diag_ratio_cap: float | None = 3.0


def _batches(data: torch.Tensor, steps: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield data[torch.randint(len(data), (batch,), generator=g)]


def _train(model, data, steps, batch, lr, seed, loss_fn, decay, log, official=False):
    """official=True: the fine-tuning optimiser of run_lm.py (emo.optim); else Adam, linear decay or constant."""
    if official:
        opt, sched = finetune_optimizer(model.parameters(), lr, steps)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps if decay else 1.0)
    curve = []
    for step, x in enumerate(_batches(data, steps, batch, seed)):
        logits = model(x[:, :-1])
        loss = loss_fn(logits, x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % log == 0 or step == steps - 1:
            curve.append([step, loss.item()])
    return curve


@torch.no_grad()
def test_nll(model: DecoderLM, x: torch.Tensor) -> float:
    """Mean model NLL of tokens t >= 2 (the positions the order-2 source scores)."""
    logp = torch.log_softmax(model(x[:, :-1]).double(), -1)
    tok = logp.gather(-1, x[:, 1:, None])[..., 0]
    return float(-tok[:, 1:].mean())


@torch.no_grad()
def divergences(model: DecoderLM, x: torch.Tensor, table: np.ndarray) -> dict:
    """Exact per-context divergences from B's next-word law p(. | x_{t-2}, x_{t-1}), averaged over the
    test positions t >= 2: forward KL(p || q) (recall: mass of p that q misses), reverse KL(q || p)
    (precision: mass q puts where p has little), and the entropies H(q), H(p). A diagnostic beside
    the claims: the sample log-likelihood alone also rewards an over-confident (low-entropy) model."""
    logq = torch.log_softmax(model(x[:, :-1]).double(), -1)[:, 1:]  # predicts x_2 .. x_T
    p = torch.from_numpy(table[x[:, :-2].numpy(), x[:, 1:-1].numpy()])  # (B, T-2, V)
    logp = p.log()
    q = logq.exp()
    return {
        "forward_kl": float((p * (logp - logq)).sum(-1).mean()),
        "reverse_kl": float((q * (logq - logp)).sum(-1).mean()),
        "entropy": float(-(q * logq).sum(-1).mean()),
        "source_entropy": float(-(p * logp).sum(-1).mean()),
    }


def cluster_geometry(weight: torch.Tensor, cluster_of: np.ndarray) -> dict:
    """Mean cosine between synonyms vs between words of different clusters (the cost's geometry)."""
    e = torch.nn.functional.normalize(weight.detach().double(), dim=1)
    cos = (e @ e.T).numpy()
    same = cluster_of[:, None] == cluster_of[None, :]
    off = ~np.eye(len(cluster_of), dtype=bool)
    return {"cos_synonyms": float(cos[same & off].mean()), "cos_others": float(cos[~same].mean())}


@torch.no_grad()
def weight_stats(model: DecoderLM, x: torch.Tensor, cost: torch.Tensor, cap: float) -> dict:
    """The official EMO weight CE_t / (EMO_t + 1e-10) over the tokens of x: its median and the fraction
    of tokens above ``cap`` (where the capped variant differs from gpt2.py's uncapped weight)."""
    logits, y = model(x[:, :-1]), x[:, 1:]
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none"
    )
    ratio = ce / (emo_cost(logits, y, cost).reshape(-1) + RATIO_EPS)
    return {
        "ratio_median": float(ratio.median()),
        "ratio_frac_above_cap": float((ratio > cap).double().mean()),
    }


def run_unit(cfg: RunConfig, seed: int, log=lambda **k: None) -> dict:
    if cfg.finetune_schedule not in ("linear", "constant"):
        raise ValueError(f"finetune_schedule must be 'linear' or 'constant', got {cfg.finetune_schedule!r}")
    src = SynonymSource(cfg.source)
    dom_a, dom_b = src.domain("A"), src.domain("B")
    # data seeds: disjoint streams per (seed, role)
    train_a = torch.from_numpy(dom_a.sample_batch(cfg.n_pretrain, cfg.seq_len + 1, seed=10_000 * seed + 1))
    train_b = torch.from_numpy(dom_b.sample_batch(cfg.n_finetune, cfg.seq_len + 1, seed=10_000 * seed + 2))
    test_b = dom_b.sample_batch(cfg.n_test, cfg.seq_len + 1, seed=10_000 * seed + 3)
    prompts = dom_b.sample_batch(cfg.n_samples, 2 + cfg.sample_len, seed=10_000 * seed + 4)

    torch.manual_seed(seed)
    model = DecoderLM(cfg.model)
    pre_curve = _train(
        model, train_a, cfg.pretrain_steps, cfg.batch, cfg.pretrain_lr, seed, mle_loss, True, cfg.log_every
    )
    checkpoint = copy.deepcopy(model.state_dict())

    out: dict = {"pretrain_curve": pre_curve}
    test_t = torch.from_numpy(test_b)
    out["source_test_nll"] = float(-dom_b.log_prob(test_b).mean())
    out["source_sample_ll"] = float(dom_b.log_prob(prompts).mean())  # B's own samples, same prompts
    out["pretrained_test_nll"] = test_nll(model, test_t)

    table_b = dom_b.probs

    def evaluate(m: DecoderLM, name: str) -> None:
        nll = test_nll(m, test_t)
        g = torch.Generator().manual_seed(10_000 * seed + 5)
        samples = sample(m, torch.from_numpy(prompts[:, :2]), cfg.sample_len, g).numpy()
        out[f"{name}_test_nll"] = nll
        out[f"{name}_test_ppl"] = math.exp(nll)
        out[f"{name}_sample_ll"] = float(dom_b.log_prob(samples).mean())
        div = divergences(m, test_t, table_b)
        out["source_entropy"] = div.pop("source_entropy")
        out.update({f"{name}_{k}": v for k, v in div.items()})

    evaluate(model, "pretrained")
    methods = ("mle", "emo") + (("emocap",) if cfg.diag_ratio_cap is not None else ())
    for method in methods:
        ft = DecoderLM(cfg.model)
        ft.load_state_dict(checkpoint)  # the loaded pretrained weights
        if method in ("emo", "emocap"):
            # cost embedding: a frozen copy of the LM head taken AFTER loading (official README
            # pattern; see emo.loss). It never changes during fine-tuning.
            cost = make_cost_embedding(ft.embed.weight)  # the LM head is the tied embedding
            out.update(cluster_geometry(cost, src.cluster_of))
            cap = cfg.diag_ratio_cap if method == "emocap" else None  # None: gpt2.py's uncapped weight

            def loss_fn(logits, y, cost=cost, cap=cap):
                return emo_loss(logits, y, cost, ratio_cap=cap)

            if method == "emo" and cfg.diag_ratio_cap is not None:  # the weight at the checkpoint
                stats = weight_stats(ft, train_b, cost, cfg.diag_ratio_cap)
                out.update({f"start_{k}": v for k, v in stats.items()})
        else:
            loss_fn = mle_loss
        curve = _train(
            ft,
            train_b,
            cfg.finetune_steps,
            cfg.batch,
            cfg.finetune_lr,
            seed + 7,
            loss_fn,
            False,
            cfg.log_every,
            official=cfg.finetune_schedule == "linear",
        )
        out[f"{method}_curve"] = curve
        evaluate(ft, method)
        if method == "emo" and cfg.diag_ratio_cap is not None:  # the weight after EMO fine-tuning
            stats = weight_stats(ft, train_b, cost, cfg.diag_ratio_cap)
            out.update({f"end_{k}": v for k, v in stats.items()})
        log(
            step=cfg.finetune_steps,
            method=method,
            test_nll=out[f"{method}_test_nll"],
            sample_ll=out[f"{method}_sample_ll"],
        )

    out["ppl_rel_gap"] = out["emo_test_ppl"] / out["mle_test_ppl"] - 1.0
    out["sample_ll_gap"] = out["emo_sample_ll"] - out["mle_sample_ll"]
    if cfg.diag_ratio_cap is not None:  # the capped variant vs MLE (diagnostic, no claim)
        out["emocap_ppl_rel_gap"] = out["emocap_test_ppl"] / out["mle_test_ppl"] - 1.0
        out["emocap_sample_ll_gap"] = out["emocap_sample_ll"] - out["mle_sample_ll"]
    return out

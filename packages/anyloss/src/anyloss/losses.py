"""AnyLoss (Han, Moniz & Chawla, KDD 2024): classification metrics made differentiable through an
amplified soft confusion matrix; plus the baselines of the official notebooks (BCE, weighted BCE, MSE).

Facts from the official notebooks (doheonhan/anyloss_extension, ``AnyLoss_Code.ipynb`` and the 102-
dataset notebook); the code is ours. With p = sigmoid output of the network and y in {0, 1}:

    amplification       A(p) = 1 / (1 + exp(-L (p - 0.5))),  L = 73 in the original-paper notebooks
    soft confusion      y_hat = A(p), N = batch size, y1 = sum y, y0 = N - y1
                        TP = sum y * y_hat, FP = sum y_hat - TP, FN = y1 - TP, TN = N - y1 - sum y_hat + TP
    Any-F_beta          1 - (1 + b^2) TP / (b^2 y1 + sum y_hat + 1e-5)            (b = 1: Any-F1)
    Any-Gmean           1 - TP * TN / (y1 * y0 + 1e-5)        (TPR * TNR, *without* the square root)
    Any-BAcc            1 - (y0 TP + y1 TN) / (2 y1 y0 + 1e-5)
    Any-Acc             1 - (TP + TN) / N
    BCE                 -mean(y log(p + 1e-5) + (1 - y) log(1 - p + 1e-5))
    WBCE                -mean(w1 y log(p + 1e-5) + w0 (1 - y) log(1 - p + 1e-5)), w1 = y0/N, w0 = y1/N
    MSE                 mean((y - p)^2)

SOL, the "state-of-the-art surrogate" the paper compares against (Marchetti, Guastavino, Piana, Campi,
"Score-oriented loss (SOL) functions", Pattern Recognit. 132 (2022) 108913, arXiv 2103.15522: its
probabilistic confusion matrix; the formulas below are those of the official code github.com/cesc14/SOL,
copied into the AnyLoss repository's SOL notebooks 4-13/4-22/4-52):
the decision threshold tau is a random variable with CDF F, and the confusion matrix is its expectation,

    TP = sum y F(p),  FP = sum (1 - y) F(p),  FN = sum y (1 - F(p)),  TN = sum (1 - y)(1 - F(p))
    SOL = 1 - score(TP, FP, FN, TN)   with the *exact* score formulas (ratios, 0 where a denominator is 0):
        acc = (TP + TN) / N,  F1 = 2 prec rec / (prec + rec),  bacc = (rec + spec) / 2,
        prec = TP / (TP + FP),  rec = TP / (TP + FN),  spec = TN / (TN + FP)
    F = raised-cosine CDF on [mu - delta, mu + delta]:
        F(x) = 0 (x < mu - delta), 1 (x > mu + delta), else 1/2 (1 + z + sin(pi z) / pi), z = (x - mu) / delta
    with mu = 0.5, delta = 0.1: the AnyLoss notebooks call SOL(score, distribution='cosine', mu=0.5,
    delta=0.1) for score in {accuracy, f1_score, bacc} (there is no G-mean SOL in them).

Every loss takes (y, p) with p already in (0, 1), like the Keras losses it mirrors, and returns a scalar.
"""

from __future__ import annotations

import torch

S = 1e-5  # the notebooks' guard against log(0) and 0/0
DEFAULT_L = 73.0


def amplify(p: torch.Tensor, L: float = DEFAULT_L) -> torch.Tensor:
    """A(p) = sigmoid(L (p - 0.5)): pushes probabilities towards 0/1 so the soft counts approach the
    counts of the thresholded predictions."""
    return torch.sigmoid(L * (p - 0.5))


def soft_confusion(y: torch.Tensor, y_hat: torch.Tensor) -> dict[str, torch.Tensor]:
    """N, y1, y0, TP, FP, FN, TN of soft predictions ``y_hat`` in [0, 1] (sums over the batch)."""
    if y.shape != y_hat.shape:
        raise ValueError(
            f"y and predictions must have the same shape, got {tuple(y.shape)} and {tuple(y_hat.shape)}"
        )
    n = torch.tensor(float(y.numel()), dtype=y_hat.dtype, device=y_hat.device)
    y = y.to(y_hat.dtype)
    y1 = y.sum()
    tp = (y * y_hat).sum()
    s_hat = y_hat.sum()
    return {"N": n, "y1": y1, "y0": n - y1, "TP": tp, "FP": s_hat - tp, "FN": y1 - tp, "TN": n - y1 - s_hat + tp,
            "sum_hat": s_hat}  # fmt: skip


def any_fbeta(y: torch.Tensor, p: torch.Tensor, beta: float = 1.0, L: float = DEFAULT_L) -> torch.Tensor:
    c = soft_confusion(y, amplify(p, L))
    return 1 - (1 + beta**2) * c["TP"] / (beta**2 * c["y1"] + c["sum_hat"] + S)


def any_gmean(y: torch.Tensor, p: torch.Tensor, L: float = DEFAULT_L) -> torch.Tensor:
    c = soft_confusion(y, amplify(p, L))
    return 1 - c["TP"] * c["TN"] / (c["y1"] * c["y0"] + S)


def any_bacc(y: torch.Tensor, p: torch.Tensor, L: float = DEFAULT_L) -> torch.Tensor:
    c = soft_confusion(y, amplify(p, L))
    return 1 - (c["y0"] * c["TP"] + c["y1"] * c["TN"]) / (2 * c["y1"] * c["y0"] + S)


def any_acc(y: torch.Tensor, p: torch.Tensor, L: float = DEFAULT_L) -> torch.Tensor:
    c = soft_confusion(y, amplify(p, L))
    return 1 - (c["TP"] + c["TN"]) / c["N"]


def bce(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    y = y.to(p.dtype)
    return -(y * torch.log(p + S) + (1 - y) * torch.log(1 - p + S)).mean()


def wbce(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    y = y.to(p.dtype)
    n = float(y.numel())
    y1 = y.sum()
    w1, w0 = (n - y1) / n, y1 / n  # the rarer class gets the larger weight
    return -(w1 * y * torch.log(p + S) + w0 * (1 - y) * torch.log(1 - p + S)).mean()


def mse(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return ((y.to(p.dtype) - p) ** 2).mean()


# ---------------------------------------------------------------- SOL (Marchetti et al. 2022)

SOL_SCORES = ("acc", "f1", "bacc")


def raised_cosine_cdf(x: torch.Tensor, mu: float = 0.5, delta: float = 0.1) -> torch.Tensor:
    """CDF of the raised-cosine threshold prior on [mu - delta, mu + delta] (SOL's 'cosine' F)."""
    z = ((x - mu) / delta).clamp(-1.0, 1.0)  # clamping gives 0 / 1 outside the support, zero gradient there
    return 0.5 * (1 + z + torch.sin(torch.pi * z) / torch.pi)


def uniform_cdf(x: torch.Tensor) -> torch.Tensor:
    """CDF of the uniform threshold prior on [0, 1] (SOL's 'uniform' F): F(p) = p."""
    return x


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, 0 where den == 0 (tf.math.divide_no_nan), with a NaN-free gradient."""
    ok = den != 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def sol_from_counts(tp, fp, fn, tn, score: str) -> torch.Tensor:
    """1 - score of an expected confusion matrix (the official SOL score formulas)."""
    if score == "acc":
        return 1 - _ratio(tp + tn, tp + fp + fn + tn)
    prec, rec, spec = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    if score == "f1":
        return 1 - 2 * _ratio(prec * rec, prec + rec)
    if score == "bacc":
        return 1 - (rec + spec) / 2
    raise ValueError(f"SOL score must be one of {SOL_SCORES}, got {score!r}")


def sol(
    y: torch.Tensor,
    p: torch.Tensor,
    score: str = "f1",
    distribution: str = "cosine",
    mu: float = 0.5,
    delta: float = 0.1,
) -> torch.Tensor:
    """Score-Oriented Loss of sigmoid outputs ``p`` (see the module docstring; defaults = the AnyLoss notebooks)."""
    if distribution == "cosine":
        f = raised_cosine_cdf(p, mu, delta)
    elif distribution == "uniform":
        f = uniform_cdf(p)
    else:
        raise ValueError(f"SOL distribution must be 'cosine' or 'uniform', got {distribution!r}")
    y = y.to(p.dtype)
    if y.shape != p.shape:
        raise ValueError(
            f"y and predictions must have the same shape, got {tuple(y.shape)} and {tuple(p.shape)}"
        )
    tp, fp = (y * f).sum(), ((1 - y) * f).sum()
    fn, tn = (y * (1 - f)).sum(), ((1 - y) * (1 - f)).sum()
    return sol_from_counts(tp, fp, fn, tn, score)


LOSSES = {
    "bce": bce,
    "wbce": wbce,
    "mse": mse,
    "any_f1": any_fbeta,
    "any_gmean": any_gmean,
    "any_bacc": any_bacc,
    "any_acc": any_acc,
    "sol_acc": lambda y, p: sol(y, p, "acc"),
    "sol_f1": lambda y, p: sol(y, p, "f1"),
    "sol_bacc": lambda y, p: sol(y, p, "bacc"),
}


def stacked_losses(
    names: list[str], y: torch.Tensor, p: torch.Tensor, L: float = DEFAULT_L, n: float | None = None
) -> torch.Tensor:
    """The losses ``names`` of stacked models at once: ``p`` is [..., M, B] (model m along dim -2 uses
    names[m]) and y is [..., B]; returns [..., M], equal to ``LOSSES[names[m]](y, p[..., m, :])`` (tested).
    A few tensor ops per step instead of a few per model.

    ``n``: the N of the soft confusion matrix and of WBCE's weights. None = this batch's size B. The
    notebooks set N = the nominal batch size (a global), also for the last, smaller batch of an epoch, so
    there y0 = N - y1 and TN = N - y1 - sum A(p) + TP count N - B phantom negatives; pass n = the nominal
    batch size for that (n >= B). The means of BCE / WBCE / MSE stay over the B rows (Keras' reduction)."""
    if p.ndim < 2 or p.shape[-2] != len(names) or p.shape[-1] != y.shape[-1] or p.shape[:-2] != y.shape[:-1]:
        raise ValueError(
            f"p must be [..., {len(names)}, B] matching y [..., B]; got {tuple(p.shape)}, {tuple(y.shape)}"
        )
    unknown = set(names) - set(LOSSES)
    if unknown:
        raise ValueError(f"unknown losses {sorted(unknown)}; choose from {sorted(LOSSES)}")
    y = y.to(p.dtype).unsqueeze(-2)  # [..., 1, B]
    if n is None:
        n = float(y.shape[-1])
    elif n < y.shape[-1]:
        raise ValueError(f"the nominal batch size n={n} is smaller than the batch ({y.shape[-1]} rows)")
    n = float(n)
    y1 = y.sum(-1)  # [..., 1]
    y0 = n - y1
    log_p, log_q = torch.log(p + S), torch.log(1 - p + S)
    a = amplify(p, L)
    tp = (y * a).sum(-1)  # [..., M]
    s_hat = a.sum(-1)
    tn = n - y1 - s_hat + tp
    # SOL's expected confusion matrix under the raised-cosine threshold prior (mu 0.5, delta 0.1)
    f = raised_cosine_cdf(p)
    s_tp, s_fp = (y * f).sum(-1), ((1 - y) * f).sum(-1)
    s_fn, s_tn = (y * (1 - f)).sum(-1), ((1 - y) * (1 - f)).sum(-1)
    per_name = {
        "bce": lambda: -(y * log_p + (1 - y) * log_q).mean(-1),
        "wbce": lambda: -((y0 / n)[..., None] * y * log_p + (y1 / n)[..., None] * (1 - y) * log_q).mean(-1),
        "mse": lambda: ((y - p) ** 2).mean(-1),
        "any_f1": lambda: 1 - 2 * tp / (y1 + s_hat + S),
        "any_gmean": lambda: 1 - tp * tn / (y1 * y0 + S),
        "any_bacc": lambda: 1 - (y0 * tp + y1 * tn) / (2 * y1 * y0 + S),
        "any_acc": lambda: 1 - (tp + tn) / n,
        "sol_acc": lambda: sol_from_counts(s_tp, s_fp, s_fn, s_tn, "acc"),
        "sol_f1": lambda: sol_from_counts(s_tp, s_fp, s_fn, s_tn, "f1"),
        "sol_bacc": lambda: sol_from_counts(s_tp, s_fp, s_fn, s_tn, "bacc"),
    }
    # each formula in use is evaluated for all M rows (cheap at these sizes); row m keeps its own loss's value
    used = [name for name in per_name if name in names]
    select = torch.stack([torch.tensor([nm == name for nm in names]) for name in used]).to(p.device)
    values = torch.stack([per_name[name]() for name in used])  # [len(used), ..., M]
    mask = select.view(len(used), *([1] * (values.ndim - 2)), len(names))
    return torch.where(mask, values, torch.zeros_like(values)).sum(0)

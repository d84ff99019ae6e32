"""Data: a synthetic CTR generator with planted interactions (cpu/smoke) and the reczoo CSV loader (full).

Synthetic design (research notes §11, scaled down; fixed before any FCN run, never tuned for FCN):
F categorical fields with Zipf(1.1) value frequencies; every (field, value) has a hidden 4-d factor u
and a scalar bias. True logit = intercept + sum of biases + planted 2nd-order pairs <u_i, u_j>
+ planted 3rd- and 4th-order multilinear terms sum_k u_i[k] u_j[k] u_l[k] (...) + N(0, noise^2).
The intercept is solved so that the CTR is about 20%. The Bayes ranking uses the noiseless logit
(E[p | x] is monotone in it), so its test AUC is the ceiling any model can reach.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class SyntheticConfig:
    """Generator settings (all fixed in reproduce.py)."""

    vocab_sizes: tuple[int, ...] = (20, 50, 100, 200, 500, 30, 80, 300)
    factor_dim: int = 4  # hidden factor size (notes: 4)
    zipf_a: float = 1.1  # value-frequency exponent
    bias_std: float = 0.3  # per-value first-order effect
    pairs: tuple[tuple[int, ...], ...] = ((0, 1), (2, 3), (4, 5), (1, 6))
    triples: tuple[tuple[int, ...], ...] = ((0, 2, 4), (3, 5, 7))
    quads: tuple[tuple[int, ...], ...] = ((1, 3, 6, 7),)
    order_scale: float = 1.0  # each planted term is scaled to unit std over the population
    noise_std: float = 0.5
    target_ctr: float = 0.2
    n_train: int = 40_000
    n_valid: int = 10_000
    n_test: int = 20_000
    seed: int = 1234  # data seed: the same dataset for every training seed
    # Protocol v4: extra rows from the SAME world (factors, biases, term scales, intercept of the base
    # draw above), drawn from a second stream (seed, 1) and appended after the base train / valid rows.
    # 0 (the default) gives the v1-v3 data bit for bit; the test split never changes.
    extra_train: int = 0
    extra_valid: int = 0


@dataclass
class CTRData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocab_sizes: list[int]
    bayes_logit_test: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def _zipf_probs(n: int, a: float) -> np.ndarray:
    p = np.arange(1, n + 1, dtype=np.float64) ** (-a)
    return p / p.sum()


def make_synthetic(cfg: SyntheticConfig) -> CTRData:
    """Draw train/valid/test from one generator (numpy, seeded by cfg.seed).

    ``info["ctr"]`` is the CTR of the base draw (train + valid + test, without extra rows)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_train + cfg.n_valid + cfg.n_test
    num_fields = len(cfg.vocab_sizes)
    for term in (*cfg.pairs, *cfg.triples, *cfg.quads):
        if any(not 0 <= f < num_fields for f in term):
            raise ValueError(f"planted term {term} names a field outside 0..{num_fields - 1}")
    if cfg.extra_train < 0 or cfg.extra_valid < 0:
        raise ValueError(f"extra_train/extra_valid must be >= 0, got {cfg.extra_train}, {cfg.extra_valid}")
    x = np.stack([rng.choice(v, size=n, p=_zipf_probs(v, cfg.zipf_a)) for v in cfg.vocab_sizes], axis=1)
    factors = [rng.standard_normal((v, cfg.factor_dim)) for v in cfg.vocab_sizes]
    biases = [cfg.bias_std * rng.standard_normal(v) for v in cfg.vocab_sizes]

    def true_logit(xs: np.ndarray) -> np.ndarray:
        """Noiseless logit before the intercept; the term scales are those of the base draw."""
        out = np.zeros(len(xs))
        for f in range(num_fields):
            out += biases[f][xs[:, f]]
        for term, scale in zip(terms, term_scales, strict=True):
            out += cfg.order_scale * _term(xs, term) / scale
        return out

    def _term(xs: np.ndarray, term: tuple[int, ...]) -> np.ndarray:
        prod = np.ones((len(xs), cfg.factor_dim))
        for f in term:
            prod = prod * factors[f][xs[:, f]]
        return prod.sum(1)

    terms = (*cfg.pairs, *cfg.triples, *cfg.quads)
    # each planted term is scaled to unit std over the base population (fixed once, reused for extra rows)
    term_scales = [_term(x, term).std() + 1e-12 for term in terms]
    logit = true_logit(x)
    # intercept by bisection on the mean probability (noise included) so that CTR ~ target
    noise = cfg.noise_std * rng.standard_normal(n)
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        ctr = (1 / (1 + np.exp(-(logit + noise + mid)))).mean()
        lo, hi = (mid, hi) if ctr < cfg.target_ctr else (lo, mid)
    intercept = (lo + hi) / 2
    logit = logit + intercept
    p = 1 / (1 + np.exp(-(logit + noise)))
    y = (rng.random(n) < p).astype(np.float32)

    a, b = cfg.n_train, cfg.n_train + cfg.n_valid
    x_tr, y_tr, x_va, y_va = x[:a], y[:a], x[a:b], y[a:b]

    def extra_rows(stream: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """m fresh rows of the same world. Every component (each field, the noise, the labels) has its
        own generator (seed, stream, component), so the first k of m rows are the rows a draw of k gives."""
        gens = [np.random.default_rng([cfg.seed, stream, j]) for j in range(num_fields + 2)]
        xs = np.stack(
            [gens[j].choice(v, size=m, p=_zipf_probs(v, cfg.zipf_a)) for j, v in enumerate(cfg.vocab_sizes)],
            axis=1,
        )
        noisy = true_logit(xs) + intercept + cfg.noise_std * gens[num_fields].standard_normal(m)
        return xs, (gens[num_fields + 1].random(m) < 1 / (1 + np.exp(-noisy))).astype(np.float32)

    if cfg.extra_train:
        xe, ye = extra_rows(1, cfg.extra_train)
        x_tr, y_tr = np.concatenate([x_tr, xe]), np.concatenate([y_tr, ye])
    if cfg.extra_valid:
        xe, ye = extra_rows(2, cfg.extra_valid)
        x_va, y_va = np.concatenate([x_va, xe]), np.concatenate([y_va, ye])
    return CTRData(
        x_tr, y_tr, x_va, y_va, x[b:], y[b:], list(cfg.vocab_sizes),
        bayes_logit_test=logit[b:], info={"ctr": float(y.mean())},
    )  # fmt: skip


# --- reczoo CSV layout (Criteo_x4 / Avazu_x4 from https://github.com/reczoo/Datasets) -------------------

# Official FuxiCTR dataset configs: min_categr_count 10 (Criteo), 2 (Avazu); Criteo's 13 numeric
# columns I1..I13 are bucketised by convert_to_bucket: int(log(v)^2) if v > 2 else v.
MIN_COUNT = {"Criteo_x4": 10, "Avazu_x4": 2}


def _criteo_bucket(value: str) -> str:
    if value == "":
        return ""
    v = float(value)
    return str(int(math.floor(math.log(v) ** 2))) if v > 2 else str(int(v))


def _read_csv(path: Path, dataset: str):
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "label" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a header row with a 'label' column (reczoo layout)")
        cols = [c for c in reader.fieldnames if c not in ("label", "id")]
        numeric = {c for c in cols if dataset.startswith("Criteo") and c.startswith("I") and c[1:].isdigit()}
        rows, labels = [], []
        for r in reader:
            labels.append(float(r["label"]))
            rows.append([_criteo_bucket(r[c]) if c in numeric else r[c] for c in cols])
    return cols, rows, np.asarray(labels, dtype=np.float32)


def load_reczoo(root: Path, dataset: str) -> CTRData:
    """Read ``root/<dataset>/{train,valid,test}.csv``; every non-label column is one categorical field.

    Values seen fewer than MIN_COUNT times in train map to index 1 (OOV); index 0 is padding/unused."""
    base = Path(root) / dataset
    files = {s: base / f"{s}.csv" for s in ("train", "valid", "test")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"missing {missing}: expected {base}/{{train,valid,test}}.csv (reczoo layout)"
        )
    cols, tr_rows, y_tr = _read_csv(files["train"], dataset)
    min_count = MIN_COUNT.get(dataset, 1)
    vocabs = []
    for j in range(len(cols)):
        counts: dict[str, int] = {}
        for r in tr_rows:
            counts[r[j]] = counts.get(r[j], 0) + 1
        kept = sorted(k for k, c in counts.items() if c >= min_count)
        vocabs.append({k: i + 2 for i, k in enumerate(kept)})

    def encode(rows):
        return np.array([[vocabs[j].get(v, 1) for j, v in enumerate(r)] for r in rows], dtype=np.int64)

    _, va_rows, y_va = _read_csv(files["valid"], dataset)
    _, te_rows, y_te = _read_csv(files["test"], dataset)
    return CTRData(
        encode(tr_rows), y_tr, encode(va_rows), y_va, encode(te_rows), y_te, [len(v) + 2 for v in vocabs]
    )

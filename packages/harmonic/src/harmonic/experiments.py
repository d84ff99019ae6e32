"""Train the same MLP body with a linear+CE head and with each harmonic distance head; measure
accuracy, CPU seconds per epoch, head weight-norm growth and prototype-to-class-mean alignment."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from harmonic.heads import DistanceHead, HarmonicClassifier
from xentlab.data.tabular import TabularSplit, load_tabular, load_vowel_speaker_split
from xentlab.models.mlp import build_mlp
from xentlab.train.minibatch import fit_epochs, predict


def head_weight(model) -> torch.Tensor:
    """The class prototypes: the distance head's weight, or the CE head's Linear weight ([V, N])."""
    return model.head.weight


@torch.no_grad()
def prototype_alignment(model, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Mean over classes of cos(w_c, mean embedding of class c) on the given (training) data."""
    was = model.training
    model.eval()
    z = model.embed(x)
    model.train(was)
    means = torch.stack([z[y == c].mean(0) for c in range(num_classes)])
    return float(F.cosine_similarity(head_weight(model), means, dim=1).mean())


def build(head: str, in_dim: int, num_classes: int, hidden, n: float):
    if head == "ce":
        return build_mlp(in_dim, hidden, num_classes)  # Linear head with bias, trained with CE
    body = build_mlp(in_dim, hidden, None)
    return HarmonicClassifier(body, DistanceHead(body.embed_dim, num_classes, head, n=n))


def load_split(cfg: dict, seed: int) -> TabularSplit:
    """The train/test rows of one unit.

    ``cfg['split'] == 'speaker'`` (vowel only): Deterding's speaker-disjoint split shipped in the table's TT
    column (528 training rows of speakers 0-7, 462 test rows of speakers 8-14), inputs = the 10 formants
    only, standardised with the training rows' statistics; every seed trains on the whole training part
    (the seed varies the initialisation and the batch order). Otherwise: the shared stratified folds of
    ``xentlab.data.tabular`` (fold ``seed mod n_folds``), all columns as features -- for vowel these folds
    put every speaker on both sides and feed TT, speaker number and sex as inputs (the version-2 protocol).
    """
    if cfg.get("split", "folds") != "speaker":
        return load_tabular(cfg["dataset"], fold=seed % cfg["n_folds"], n_folds=cfg["n_folds"])
    if cfg["dataset"] != "vowel":
        raise ValueError(f"the speaker split exists for vowel only, got {cfg['dataset']!r}")
    return load_vowel_speaker_split()


def run_heads(cfg: dict, seed: int) -> dict:
    """One dataset and seed: every head of ``cfg['heads']`` on the same split and the same body init."""
    split = load_split(cfg, seed)
    k = split.num_classes
    out: dict = {}
    norms: dict = {}
    for head in cfg["heads"]:
        torch.manual_seed(seed)
        model = build(head, split.num_features, k, cfg["hidden"], cfg["n"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        curve = [float(head_weight(model).detach().norm())]
        cpu = []

        def on_epoch(_epoch, _loss, model=model, curve=curve, cpu=cpu):
            curve.append(float(head_weight(model).detach().norm()))
            cpu.append(time.process_time())

        if head == "ce":
            loss_fn = lambda m, xb, yb, _i: F.cross_entropy(m(xb), yb)  # noqa: E731
        else:
            loss_fn = lambda m, xb, yb, _i: F.nll_loss(m(xb), yb)  # noqa: E731
        t0 = time.process_time()
        fit_epochs(
            model, opt, split.x_train, split.y_train, loss_fn,
            epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed, on_epoch=on_epoch,
        )  # fmt: skip
        # CPU seconds per epoch, training only (the norm bookkeeping is negligible)
        out[f"cpu_s_per_epoch_{head}"] = (cpu[-1] - t0) / cfg["epochs"]
        out[f"acc_{head}"] = float((predict(model, split.x_test).argmax(1) == split.y_test).float().mean())
        mid = len(curve) // 2
        out[f"norm_growth_total_{head}"] = curve[-1] / curve[0]
        out[f"norm_growth_late_{head}"] = curve[-1] / curve[mid]  # second half of training
        out[f"alignment_{head}"] = prototype_alignment(model, split.x_train, split.y_train, k)
        norms[head] = curve
    out["norm_curves"] = norms  # artifact for the figure
    return out

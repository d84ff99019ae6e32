"""One arm (SimCLR or G-SimCLR) at one seed: pseudo labels (G-SimCLR only), contrastive pre-training, linear probes.

Both arms share the data, backbone, head, augmentation, optimiser and number of SGD steps; they differ only in
which images share a batch: one random partition replayed every epoch (vanilla SimCLR, whose notebook shuffles
before caching) or G-SimCLR's fixed rank-sorted batches built from KMeans pseudo labels of denoising-autoencoder
embeddings. Both arms' batches are fixed across epochs, as in the notebooks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from gsimclr.autoencoder import DenoisingAutoencoder, kmeans_pseudo_labels, train_autoencoder
from gsimclr.balanced import balanced_pseudo_labels, grayscale, random_equal_groups
from gsimclr.batching import (
    per_batch_pair_rates,
    pseudo_label_batches,
    random_batches,
    same_label_pair_rate,
    training_batches,
)
from gsimclr.model import OFFICIAL_HEAD, SimCLRNet
from xentlab.data.augment import AugmentConfig, augment
from xentlab.losses.ntxent import OFFICIAL_TEMPERATURE, nt_xent

DATA_ENV = "GSIMCLR_DATA_ROOT"
CUTS = ("P1", "P2", "P3")


@dataclass(frozen=True)
class RunConfig:
    """Everything one unit needs; the defaults are the official CIFAR-10 settings where they apply."""

    arm: str = "gsimclr"
    """'simclr' (random batches) or 'gsimclr' (pseudo-label batches)"""
    dataset: str = "shapes"
    """'shapes' (xentlab.data.shapes, generated offline) or 'cifar10' (from data_root / $GSIMCLR_DATA_ROOT)"""
    data_root: str | None = None
    n_train_per_class: int = 300
    """shapes only: unlabelled pre-training images per class (their labels are used by the probe only)"""
    n_test_per_class: int = 100
    """shapes only"""
    backbone: str = "cnn"
    """'cnn' (xentlab build_cnn) or 'resnet' (xentlab build_resnet of resnet_depth)"""
    widths: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 1
    resnet_depth: int = 38
    head: tuple[int, int, int] = OFFICIAL_HEAD
    batch_size: int = 64
    n_clusters: int | None = None
    """KMeans K; None = batch_size, as in the paper"""
    epochs: int = 15
    lr: float = 0.1
    """initial lr of SGD (no momentum) with CosineDecayRestarts"""
    first_decay_steps: int = 1000
    temperature: float = OFFICIAL_TEMPERATURE
    augment: dict = field(default_factory=dict)
    """AugmentConfig fields; empty = the official recipe"""
    dae_widths: tuple[int, ...] = (32, 64, 128)
    dae_epochs: int = 23
    dae_lr: float = 1e-3
    kmeans_n_init: int = 10
    clustering: str = "kmeans"
    """gsimclr only. 'kmeans' = the official (unbalanced) KMeans labels; 'balanced' = a diagnostic, not in the
    paper: the same KMeans centroids with equal cluster sizes (gsimclr.balanced), so every batch holds exactly one
    image per cluster; 'random_groups' = the control of 'balanced', not in the paper: groups of the same equal sizes
    drawn uniformly at random (gsimclr.balanced.random_equal_groups), independent of the DAE. The DAE is still
    trained (and its output ignored) so that the torch random stream, hence the network initialisation and the
    augmentation draws, is the balanced arm's at the same seed"""
    dae_input: str = "rgb"
    """gsimclr only. 'rgb' = the official DAE input; 'gray' = a diagnostic: the DAE is trained on and embeds the
    luma image, to remove colour from the pseudo labels"""
    simclr_reshuffle: bool = False
    """simclr only. False = the vanilla notebook: its shuffle(1024) comes before cache(), so one random partition into
    batches is replayed every epoch (fixed batches, like G-SimCLR's); True = a fresh permutation every epoch (this
    package before the second audit; not the notebook's)"""
    probe_cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    """inverse L2 strengths tried for the logistic-regression probe, chosen on a validation split"""
    probe_val_frac: float = 0.2
    probe_max_iter: int = 300


def cosine_decay_restarts(
    step: int, lr0: float, first_decay_steps: int, t_mul: float = 2.0, m_mul: float = 1.0, alpha: float = 0.0
) -> float:
    """``tf.keras.experimental.CosineDecayRestarts`` (SGDR, Loshchilov & Hutter 2017) with TF's defaults:
    periods of first_decay_steps, then x t_mul each restart, amplitude x m_mul, floor alpha."""
    frac = step / first_decay_steps
    if t_mul == 1.0:
        i = math.floor(frac)
        frac -= i
    else:
        i = math.floor(math.log(1 - frac * (1 - t_mul)) / math.log(t_mul))
        done = (1 - t_mul**i) / (1 - t_mul)
        frac = (frac - done) / t_mul**i
    cosine = 0.5 * m_mul**i * (1 + math.cos(math.pi * frac))
    return lr0 * ((1 - alpha) * cosine + alpha)


def load_data(cfg: RunConfig):
    """(x_train, y_train, x_test, y_test) as float tensors in [0, 1] and int64 labels."""
    if cfg.dataset == "shapes":
        from xentlab.data.shapes import ShapesConfig, load_shapes

        # one fixed draw for training and one for testing; seeds vary the model, augmentation and batches
        train = load_shapes(ShapesConfig(n_per_class=cfg.n_train_per_class, size=32), seed=0)
        test = load_shapes(ShapesConfig(n_per_class=cfg.n_test_per_class, size=32), seed=1)
    elif cfg.dataset == "cifar10":
        from xentlab.data.local_images import image_data_root, load_train_test

        root = image_data_root({"data_root": cfg.data_root}, DATA_ENV, ["cifar10"])
        train, test = load_train_test("cifar10", root, env=DATA_ENV, datasets=["cifar10"])
    else:
        raise ValueError(f"dataset must be 'shapes' or 'cifar10', got {cfg.dataset!r}")
    return train.x.float(), train.y.long(), test.x.float(), test.y.long()


def build_backbone(cfg: RunConfig):
    from xentlab.models.cnn import build_cnn, build_resnet

    if cfg.backbone == "cnn":
        net = build_cnn(3, 10, cfg.widths, convs_per_stage=cfg.convs_per_stage)
    elif cfg.backbone == "resnet":
        net = build_resnet(cfg.resnet_depth, in_channels=3)
    else:
        raise ValueError(f"backbone must be 'cnn' or 'resnet', got {cfg.backbone!r}")
    return net, net.feature_dim


@torch.no_grad()
def extract(model: SimCLRNet, x: torch.Tensor, device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Frozen features at the three cut points, BatchNorm in eval mode."""
    model.eval()
    parts = [model.cut_points(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    return {c: torch.cat([p[c] for p in parts]).cpu().double().numpy() for c in CUTS}


def linear_probe(f_train, y_train, f_test, y_test, cs, val_frac, max_iter, seed) -> dict:
    """Logistic regression on standardised frozen features; C picked on a split of the training set (never the
    test set), then refit on the whole training set and scored once on the test set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    idx_tr, idx_val = train_test_split(
        np.arange(len(y_train)), test_size=val_frac, random_state=seed, stratify=_stratify(y_train)
    )

    def fit(idx, c):
        scaler = StandardScaler().fit(f_train[idx])
        clf = LogisticRegression(C=c, max_iter=max_iter).fit(scaler.transform(f_train[idx]), y_train[idx])
        return scaler, clf

    val_acc = []
    for c in cs:
        scaler, clf = fit(idx_tr, c)
        val_acc.append(clf.score(scaler.transform(f_train[idx_val]), y_train[idx_val]))
    best = cs[int(np.argmax(val_acc))]
    scaler, clf = fit(np.arange(len(y_train)), best)
    return {
        "test_acc": float(clf.score(scaler.transform(f_test), y_test)),
        "C": best,
        "val_acc": float(max(val_acc)),
    }


def _stratify(y):
    counts = np.bincount(y)
    return y if counts[counts > 0].min() >= 2 else None


def run(cfg: RunConfig, seed: int, *, device, log: Callable[..., None], progress=lambda it, **kw: it) -> dict:
    if cfg.arm not in ("simclr", "gsimclr"):
        raise ValueError(f"arm must be 'simclr' or 'gsimclr', got {cfg.arm!r}")
    if cfg.clustering not in ("kmeans", "balanced", "random_groups") or cfg.dae_input not in ("rgb", "gray"):
        raise ValueError(
            f"clustering must be 'kmeans', 'balanced' or 'random_groups' and dae_input 'rgb' or 'gray', "
            f"got {cfg.clustering!r}, {cfg.dae_input!r}"
        )
    t0 = time.time()
    x_train, y_train, x_test, y_test = load_data(cfg)
    y_np = y_train.numpy()
    n, b = len(x_train), cfg.batch_size
    rng = np.random.default_rng(seed)
    out: dict = {}

    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    def class_info(labels) -> tuple[float, float]:
        """(NMI, AMI) of a clustering with the true classes. NMI of 64 random groups of 30 is ~0.05 here, not 0
        (finite-sample bias); AMI subtracts the expected MI of random labels of the same sizes, so chance is ~0.
        Both with sklearn's default arithmetic-mean normalisation."""
        return (
            float(normalized_mutual_info_score(y_np, labels)),
            float(adjusted_mutual_info_score(y_np, labels)),
        )

    if cfg.arm == "gsimclr":  # Sec. III-A: DAE -> embeddings -> KMeans(K = B) -> rank-sorted fixed batches
        dae = DenoisingAutoencoder(3, cfg.dae_widths).to(device)
        x_dae = (grayscale(x_train) if cfg.dae_input == "gray" else x_train).to(device)
        dae_curve = train_autoencoder(dae, x_dae, epochs=cfg.dae_epochs, batch_size=b, lr=cfg.dae_lr, log=log)
        emb = dae.embed(x_dae).cpu().numpy()
        k = cfg.n_clusters or b
        if cfg.clustering == "kmeans":
            clusters = kmeans_pseudo_labels(emb, k, random_state=0, n_init=cfg.kmeans_n_init)
        elif cfg.clustering == "random_groups":  # control: equal-size random groups, no cluster information
            # its own generator, so that the draw does not shift any other random stream of the unit
            clusters = random_equal_groups(n, k, np.random.default_rng([seed, 1]))
        else:  # diagnostic: same KMeans fit, equal cluster sizes (gsimclr.balanced)
            clusters, km_labels = balanced_pseudo_labels(emb, k, random_state=0, n_init=cfg.kmeans_n_init)
            nmi, ami = class_info(km_labels)
            out |= {"kmeans_class_nmi": nmi, "kmeans_class_ami": ami,
                    "kmeans_size_max": int(np.bincount(km_labels).max()),
                    "kmeans_size_min": int(np.bincount(km_labels, minlength=k).min())}  # fmt: skip
        fixed = pseudo_label_batches(clusters, b)
        out |= {
            # the batching at the level it acts on: pairs sharing a pseudo label, G-SimCLR vs random batches
            "same_cluster_pair_rate": same_label_pair_rate(fixed, clusters),
            "random_same_cluster_pair_rate": same_label_pair_rate(
                random_batches(n, b, np.random.default_rng(seed)), clusters
            ),
        }
        # along the fixed order: where the one-image-per-cluster property holds and where it breaks down
        out["batch_cluster_rates"] = per_batch_pair_rates(fixed, clusters).tolist()
        out["batch_class_rates"] = per_batch_pair_rates(fixed, y_np).tolist()
        nmi, ami = class_info(clusters)
        out |= {"dae_final_mse": dae_curve[-1], "cluster_class_nmi": nmi, "cluster_class_ami": ami,
                "cluster_size_max": int(np.bincount(clusters).max()), "cluster_size_min": int(np.bincount(clusters).min())}  # fmt: skip
        out["pseudo_time_s"] = time.time() - t0

    backbone, feat_dim = build_backbone(cfg)
    model = SimCLRNet(backbone, feat_dim, cfg.head).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)  # the notebooks' SGD: no momentum, no weight decay
    aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.augment.items()})
    step, pair_rates, losses = 0, [], []
    # fixed batches in both arms, as in both notebooks (batching.training_batches): G-SimCLR's rank-sorted ones, and
    # for SimCLR one random partition drawn from the unit's generator
    schedule = training_batches(
        fixed if cfg.arm == "gsimclr" else None, n, b, cfg.epochs, rng, reshuffle=cfg.simclr_reshuffle
    )
    for epoch in progress(range(cfg.epochs), desc=cfg.arm):
        batches = schedule[epoch]
        pair_rates.append(same_label_pair_rate(batches, y_np))
        model.train()
        for idx in batches:
            for g in opt.param_groups:
                g["lr"] = cosine_decay_restarts(step, cfg.lr, cfg.first_decay_steps)
            xb = x_train[torch.from_numpy(idx)].to(device)
            # two separate forward passes, as the notebook's train_step (BatchNorm statistics per view)
            loss = nt_xent(model(augment(xb, aug)), model(augment(xb, aug)), cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        log(step=step, epoch=epoch, ntxent=float(np.mean(losses[-len(batches) :])))
    if not np.isfinite(losses).all():
        raise FloatingPointError(f"NT-Xent became non-finite for arm {cfg.arm}, seed {seed}")

    f_train, f_test = extract(model, x_train, device), extract(model, x_test, device)
    for cut in CUTS:
        r = linear_probe(
            f_train[cut],
            y_np,
            f_test[cut],
            y_test.numpy(),
            cfg.probe_cs,
            cfg.probe_val_frac,
            cfg.probe_max_iter,
            seed,
        )
        out |= {f"acc_{cut}": r["test_acc"], f"val_acc_{cut}": r["val_acc"], f"probe_C_{cut}": r["C"]}
    out |= {
        # rate of same-true-class pairs inside a batch, over the batches actually trained on (claim i)
        "same_class_pair_rate": float(np.mean(pair_rates)),
        "final_ntxent": float(np.mean(losses[-len(batches) :])),
        "steps": step,
        "time_s": time.time() - t0,
        "loss_curve": [
            float(np.mean(losses[i : i + len(batches)])) for i in range(0, len(losses), len(batches))
        ],
    }
    return out

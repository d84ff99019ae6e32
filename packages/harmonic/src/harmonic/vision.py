"""``--scale full``: the paper's vision benchmarks (MNIST, CIFAR-10, CIFAR-100) with its MLP, CNN and
ResNet-50 backbones, each with a linear+CE head or a harmonic distance head, from a local data root.

Facts from the official code's vision runner (``config/regular_config.py`` and ``models/models.py`` of
maxwellmg/rethinking-harmonic-loss, read through code search; the code here is ours):

* backbones -- MLP: flatten, Linear 512, ReLU, Linear 256, ReLU (``hidden_sizes [512, 256]``);
  CNN: conv3x3 32, ReLU, max-pool 2, conv3x3 64, ReLU, max-pool 2, flatten, Linear 128, ReLU
  (``SimpleCNN``); ResNet-50: torchvision's resnet50 with a 3x3 stride-1 stem and no max-pool for
  28x28 / 32x32 inputs (``ResNet50Wrapper``), 2048-d pooled features;
* optimisation per (backbone, dataset): MLP / CNN Adam lr 3e-4 (no weight decay), 40 / 40 / 150 epochs
  (MNIST / CIFAR-10 / CIFAR-100), StepLR(50, 0.5) on CIFAR-100 only; ResNet-50 SGD lr 0.1, momentum 0.9,
  weight decay 1e-4, 100 / 100 / 200 epochs, StepLR(30, 0.1) (MNIST, CIFAR-10) or MultiStepLR([60, 100,
  140], 0.2) (CIFAR-100); batch sizes of its "h100" table (MLP 2048 / 1024 / 1024, CNN 8192 / 4096 / 512,
  ResNet-50 512 / 512 / 256);
* heads: n = 1 for every distance; the harmonic loss is NLL of p_c = d_c^-n / sum_j d_j^-n
  (``harmonic.heads``), the CE baseline a Linear layer with bias.

The data come from ``HARMONIC_DATA_ROOT`` in their published formats (``xentlab.data.local_images``); nothing is
downloaded. Images are standardised per channel with training-set statistics; no augmentation.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from harmonic.experiments import head_weight
from harmonic.heads import DistanceHead, HarmonicClassifier
from xentlab.data.images import ImageSet, standardize
from xentlab.data.local_images import LOCAL_IMAGE_SETS, image_data_root, load_train_test
from xentlab.models.resnet_bottleneck import build_bottleneck_resnet
from xentlab.train.minibatch import fit_epochs, predict

ENV_VAR = "HARMONIC_DATA_ROOT"
DATASETS = ("mnist", "cifar10", "cifar100")
BACKBONES = ("mlp", "cnn", "resnet50")


def load_vision(dataset: str, data_root: str | None) -> tuple[ImageSet, ImageSet]:
    """(train, test) of ``dataset`` from the local root; a clear error naming ``HARMONIC_DATA_ROOT`` and
    the expected files when the root is unset or the files are not there."""
    root = image_data_root({"data_root": data_root}, ENV_VAR, (dataset,))
    return load_train_test(dataset, root, env=ENV_VAR, datasets=DATASETS)


# ----------------------------------------------------------------------------- backbones


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def build_backbone(name: str, in_channels: int, size: int) -> tuple[nn.Module, int]:
    """(body mapping images to embeddings, embedding dim) of the official backbones."""
    if name == "mlp":
        d = in_channels * size * size
        body = nn.Sequential(Flatten(), nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
        return body, 256
    if name == "cnn":
        flat = 64 * (size // 4) * (size // 4)
        body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            Flatten(), nn.Linear(flat, 128), nn.ReLU(),
        )  # fmt: skip
        return body, 128
    if name == "resnet50":
        net = build_bottleneck_resnet(50, in_channels=in_channels, num_classes=1, stem="small")
        return _Features(net), net.feature_dim
    raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")


class _Features(nn.Module):
    """A classifier network used up to its pooled features (its own head is unused)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


class LinearClassifier(nn.Module):
    """Backbone + Linear head with bias (the CE baseline); same ``embed`` / ``head`` interface as
    ``HarmonicClassifier``."""

    def __init__(self, body: nn.Module, dim: int, num_classes: int):
        super().__init__()
        self.body, self.head = body, nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_model(
    backbone: str, head: str, in_channels: int, size: int, num_classes: int, n: float
) -> nn.Module:
    body, dim = build_backbone(backbone, in_channels, size)
    if head == "ce":
        return LinearClassifier(body, dim, num_classes)
    return HarmonicClassifier(body, DistanceHead(dim, num_classes, head, n=n))


def make_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """The official optimiser of ``cfg`` (see the module docstring)."""
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"]
        )
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg['optimizer']!r}")


def lr_milestones(cfg: dict) -> tuple[list[int], float]:
    """The official per-epoch scheduler as (epochs at whose start the lr is multiplied, factor): StepLR(s, g)
    multiplies by g at epochs s, 2s, ...; MultiStepLR(m, g) at the epochs m; no scheduler: none."""
    sched = cfg.get("scheduler")
    if not sched:
        return [], 1.0
    if sched["type"] == "step":
        return list(range(sched["step_size"], cfg["epochs"], sched["step_size"])), sched["gamma"]
    if sched["type"] == "multistep":
        return list(sched["milestones"]), sched["gamma"]
    raise ValueError(f"unknown scheduler {sched!r}")


def run_vision(cfg: dict, seed: int, device: torch.device | str = "cpu", log=None) -> dict:
    """One (dataset, backbone, head) at one seed: train, then test accuracy, seconds per epoch (wall
    clock, device-synchronised), head-norm growth and prototype-to-class-mean alignment."""
    device = torch.device(device)
    train, test = load_vision(cfg["dataset"], cfg["data_root"])
    x_tr, x_te = standardize(train.x, test.x)
    x_tr, y_tr, x_te, y_te = x_tr.to(device), train.y.to(device), x_te.to(device), test.y.to(device)
    k = LOCAL_IMAGE_SETS[cfg["dataset"]].num_classes
    torch.manual_seed(seed)
    model = build_model(cfg["backbone"], cfg["head"], x_tr.shape[1], x_tr.shape[-1], k, cfg["n"]).to(device)
    opt = make_optimizer(model, cfg)
    milestones, gamma = lr_milestones(cfg)
    n = len(x_tr)
    curve = [float(head_weight(model).detach().norm())]
    seconds: list[float] = []

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def loss_fn(model, xb, yb, _idx):
        # CE on the linear head's logits; NLL on the harmonic head's log(p + 1e-8) (harmonic.heads)
        out = model(xb)
        return F.cross_entropy(out, yb) if cfg["head"] == "ce" else F.nll_loss(out, yb)

    def on_epoch(epoch: int, mean_loss: float) -> None:
        nonlocal started
        seconds.append(sync() - started)  # the epoch's wall time, device-synchronised
        curve.append(float(head_weight(model).detach().norm()))
        if log is not None:
            log(step=epoch, loss=mean_loss)
        started = sync()  # the head-norm bookkeeping above is not timed

    started = sync()
    fit_epochs(model, opt, x_tr, y_tr, loss_fn, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
               lr_milestones=milestones, lr_gamma=gamma, on_epoch=on_epoch)  # fmt: skip
    acc = float((predict(model, x_te, 1024).argmax(1) == y_te).float().mean())
    # alignment on (at most) 10,000 training images, embedded in eval mode, batched
    sub = torch.arange(min(n, 10_000), device=device)
    with torch.no_grad():
        model.eval()
        z = torch.cat([model.embed(x_tr[sub[i : i + 1024]]) for i in range(0, len(sub), 1024)])
    mid = len(curve) // 2
    return {
        "acc": acc,
        "s_per_epoch": sum(seconds) / max(len(seconds), 1),
        "norm_growth_total": curve[-1] / curve[0],
        "norm_growth_late": curve[-1] / curve[mid],
        "alignment": _alignment(head_weight(model).detach(), z, y_tr[sub], k),
        "norm_curve": curve,
    }


def _alignment(w: torch.Tensor, z: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Mean over the classes present of cos(w_c, mean embedding of class c) (as prototype_alignment)."""
    present = [c for c in range(k) if bool((y == c).any())]
    means = torch.stack([z[y == c].mean(0) for c in present])
    return float(F.cosine_similarity(w[present], means, dim=1).mean())


# ----------------------------------------------------------------------------- the official settings


def official_config(dataset: str, backbone: str) -> dict:
    """Optimiser / schedule / batch / epochs of the official ``regular_config`` for this pair."""
    if dataset not in DATASETS or backbone not in BACKBONES:
        raise ValueError(f"unknown pair ({dataset!r}, {backbone!r})")
    i = DATASETS.index(dataset)
    if backbone in ("mlp", "cnn"):
        batch = {"mlp": (2048, 1024, 1024), "cnn": (8192, 4096, 512)}[backbone][i]
        sched = {"type": "step", "step_size": 50, "gamma": 0.5} if dataset == "cifar100" else None
        return {"optimizer": "adam", "lr": 3e-4, "weight_decay": 0.0, "epochs": (40, 40, 150)[i],
                "batch_size": batch, "scheduler": sched}  # fmt: skip
    sched = (
        {"type": "multistep", "milestones": [60, 100, 140], "gamma": 0.2}
        if dataset == "cifar100"
        else {"type": "step", "step_size": 30, "gamma": 0.1}
    )
    return {"optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4, "epochs": (100, 100, 200)[i],
            "batch_size": (512, 512, 256)[i], "scheduler": sched}  # fmt: skip

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
downloaded. The input pipeline is the official one (``data/data_loaders.py``, version 2 of the full experiments;
``official_config`` carries it as the keys ``normalize`` and ``augment``):

* MLP / CNN: no augmentation; Normalize(0.5, 0.5) on MNIST and CIFAR-10, the CIFAR-100 mean/std on CIFAR-100
  (``transform_mnist``, ``transform_cifar``, ``transform_cifar100``);
* ResNet-50: MNIST Normalize(0.1307, 0.3081), no augmentation; CIFAR-10 RandomHorizontalFlip, RandomCrop(32,
  padding 4), RandomRotation(10), then its mean/std; CIFAR-100 the same with RandomRotation(15) and
  ColorJitter(0.2, 0.2, 0.2, 0.1) after the rotation, then its mean/std. Test images: the normalisation only.

The augmentation runs per batch on the device, on the raw [0, 1] images, with an independent draw per image
from a seeded CPU generator, and the normalisation comes after it (as ToTensor + Normalize close the official
Compose). torchvision is not a dependency; the transforms below follow its semantics (see each function).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from harmonic.experiments import head_weight
from harmonic.heads import DistanceHead, HarmonicClassifier
from xentlab.data.images import ImageSet, adjust_contrast, random_crop_flip, rotate, standardize, to_grayscale
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


# ----------------------------------------------------------------------------- the official input pipeline


def _per_image(f: torch.Tensor) -> torch.Tensor:
    return f.reshape(-1, 1, 1, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with black (torchvision / PIL ``ImageEnhance.Brightness``): clamp(f x, 0, 1)."""
    return (_per_image(f) * x).clamp(0.0, 1.0)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with the image's own luma (``ImageEnhance.Color``): clamp(f x + (1 - f) L, 0, 1); grey images
    pass through (torchvision matches PIL there)."""
    if x.shape[1] == 1:
        return x
    f = _per_image(f)
    return (f * x + (1.0 - f) * to_grayscale(x, keep_channels=False)).clamp(0.0, 1.0)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (N x 3 x H x W) to HSV with h in [0, 1); h of a grey pixel is 0; ties of the maximum
    go to r, then g (the PIL / torchvision convention)."""
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    c = v - x.min(1).values
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(
        v == r,
        torch.remainder((g - b) / safe_c, 6.0),
        torch.where(v == g, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0),
    )
    h = torch.where(c > 0, h / 6.0, torch.zeros_like(h))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack((h, s, v), 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_hsv``: channel m in (r, g, b) = v - v s clamp(min(k, 4 - k), 0, 1) with
    k = (n_m + 6 h) mod 6, n = (5, 3, 1) (the closed form of the six-sector table)."""
    h, s, v = hsv.unbind(1)
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + 6.0 * h, 6.0)
        out.append(v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(out, 1)


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Shift the hue by f (a fraction of the colour circle) through HSV, h <- (h + f) mod 1
    (torchvision ``adjust_hue``); grey images pass through."""
    if x.shape[1] == 1:
        return x
    hsv = rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + f.reshape(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), 1))


# torchvision's fn_idx 0..3 (contrast: the core's, a blend with the mean luma as ImageEnhance.Contrast)
JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def jitter_params(
    n: int, strengths: tuple[float, float, float, float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """ColorJitter(brightness, contrast, saturation, hue)'s draws for n images, each its own: an order of
    the four operations uniform over the 24 permutations (torchvision: ``torch.randperm(4)``; here the
    argsort of four uniforms, the same law) and factors uniform in [max(0, 1 - s), 1 + s] for brightness,
    contrast and saturation, in [-h, h] for the hue. Returns (order n x 4, factors n x 4 in op order)."""
    b, c, sat, hue = strengths
    if min(strengths) < 0 or hue > 0.5:
        raise ValueError(f"jitter strengths must be >= 0 and hue <= 0.5, got {strengths}")
    order = torch.rand(n, 4, generator=generator).argsort(dim=1)
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    lo = torch.tensor([max(0.0, 1 - b), max(0.0, 1 - c), max(0.0, 1 - sat), -hue], dtype=torch.float64)
    hi = torch.tensor([1 + b, 1 + c, 1 + sat, hue], dtype=torch.float64)
    return order, lo + (hi - lo) * u


def color_jitter(
    x: torch.Tensor, order: torch.Tensor, factors: torch.Tensor, strengths: tuple[float, ...]
) -> torch.Tensor:
    """Apply the four jitter operations to each image in its own ``order`` (from ``jitter_params``); an
    operation of strength 0 is skipped (torchvision leaves it out)."""
    order, factors = order.to(x.device), factors.to(device=x.device, dtype=x.dtype)
    for pos in range(4):
        out = x
        for k, op in enumerate(JITTER_OPS):
            if strengths[k] == 0:
                continue
            chosen = (order[:, pos] == k).reshape(-1, 1, 1, 1)
            out = torch.where(chosen, op(x, factors[:, k]), out)
        x = out
    return x


def augment_batch(x: torch.Tensor, aug: dict, generator: torch.Generator) -> torch.Tensor:
    """The official training augmentation of ``aug`` (``official_config``) on raw [0, 1] images, one random
    draw per image, in the official order: flip, crop, rotation, colour jitter.

    Flip and crop come from ``xentlab.data.images.random_crop_flip`` (zero padding, offset uniform in
    0..2p per axis, mirror with probability 1/2), which crops before it flips; the official Compose flips
    first. The two have the same law: flipping then cropping at column offset o equals cropping at 2p - o
    then flipping (``test_flip_then_crop_equals_crop_then_flip``), and o and 2p - o are equally likely.
    """
    if aug.get("crop_padding") or aug.get("flip"):
        x = random_crop_flip(
            x, padding=aug.get("crop_padding", 0), flip=aug.get("flip", False), generator=generator
        )
    if aug.get("rotation"):
        deg = aug["rotation"]
        # RandomRotation(d): angle uniform in [-d, d]
        # torchvision's defaults: nearest, zero fill, same size
        angles = (torch.rand(len(x), generator=generator, dtype=torch.float64) * 2 - 1) * deg
        x = rotate(x, angles, mode="nearest")
    if aug.get("color_jitter"):
        strengths = tuple(aug["color_jitter"])
        order, factors = jitter_params(len(x), strengths, generator)
        x = color_jitter(x, order, factors, strengths)
    return x


def normalize(x: torch.Tensor, norm: dict) -> torch.Tensor:
    """transforms.Normalize(mean, std): (x - mean_c) / std_c per channel."""
    mean = torch.tensor(norm["mean"], dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    std = torch.tensor(norm["std"], dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return (x - mean) / std


AUG_SEED_OFFSET = 0x5EED_A06  # the augmentation generator's seed is seed + this, apart from the batch order's


def run_vision(cfg: dict, seed: int, device: torch.device | str = "cpu", log=None) -> dict:
    """One (dataset, backbone, head) at one seed: train, then test accuracy, seconds per epoch (wall
    clock, device-synchronised), head-norm growth and prototype-to-class-mean alignment."""
    device = torch.device(device)
    train, test = load_vision(cfg["dataset"], cfg["data_root"])
    norm, aug = cfg.get("normalize"), cfg.get("augment")
    if norm is None:  # a config without the official pipeline (version 1): per-channel standardisation
        x_tr, x_te = standardize(train.x, test.x)
    else:  # the official transforms (data/data_loaders.py): train images stay raw [0, 1] until each batch
        x_tr, x_te = train.x, normalize(test.x, norm)
    x_tr, y_tr, x_te, y_te = x_tr.to(device), train.y.to(device), x_te.to(device), test.y.to(device)
    aug_gen = torch.Generator().manual_seed(seed + AUG_SEED_OFFSET)

    def prep(xb: torch.Tensor, train_step: bool) -> torch.Tensor:
        """A batch of x_tr as the model sees it: augmented (training steps only) then normalised."""
        if norm is None:
            return xb
        if train_step and aug:
            xb = augment_batch(xb, aug, aug_gen)
        return normalize(xb, norm)

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
        out = model(prep(xb, True))
        return F.cross_entropy(out, yb) if cfg["head"] == "ce" else F.nll_loss(out, yb)

    def on_epoch(epoch: int, mean_loss: float) -> None:
        nonlocal started
        seconds.append(sync() - started)  # the epoch's wall time, device-synchronised
        curve.append(float(head_weight(model).detach().norm()))
        if log is not None:
            log(step=epoch, loss=mean_loss)
        started = sync()  # the head-norm bookkeeping above is not timed

    started = sync()
    # drop_last: the official train DataLoader drops the last partial batch (data/data_loaders.py, full
    # experiments version 3); a config without the key keeps it (version <= 2)
    fit_epochs(model, opt, x_tr, y_tr, loss_fn, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
               drop_last=bool(cfg.get("drop_last", False)), lr_milestones=milestones, lr_gamma=gamma,
               on_epoch=on_epoch)  # fmt: skip
    acc = float((predict(model, x_te, 1024).argmax(1) == y_te).float().mean())
    # alignment on (at most) 10,000 training images (normalised, not augmented), embedded in eval mode, batched
    sub = torch.arange(min(n, 10_000), device=device)
    with torch.no_grad():
        model.eval()
        z = torch.cat([model.embed(prep(x_tr[sub[i : i + 1024]], False)) for i in range(0, len(sub), 1024)])
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


# Normalize constants of the official data/data_loaders.py
_HALF = {1: {"mean": [0.5], "std": [0.5]}, 3: {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
MNIST_STATS = {"mean": [0.1307], "std": [0.3081]}
CIFAR10_STATS = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
CIFAR100_STATS = {"mean": [0.5071, 0.4867, 0.4408], "std": [0.2675, 0.2565, 0.2761]}


def official_pipeline(dataset: str, backbone: str) -> tuple[dict, dict | None]:
    """(normalize, augment) of the official ``get_loaders`` for this pair (module docstring)."""
    if backbone in ("mlp", "cnn"):
        # transform_mnist / transform_cifar: 0.5; CIFAR-100 goes to transform_cifar100 (its own mean/std)
        norm = CIFAR100_STATS if dataset == "cifar100" else _HALF[1 if dataset == "mnist" else 3]
        return norm, None
    if dataset == "mnist":  # transform_mnist_vgg_resnet_train: no augmentation
        return MNIST_STATS, None
    if dataset == "cifar10":  # transform_cifar10_vgg_resnet_train
        return CIFAR10_STATS, {"flip": True, "crop_padding": 4, "rotation": 10.0, "color_jitter": None}
    # transform_cifar100_vgg_resnet_train: RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.1) after it
    return CIFAR100_STATS, {
        "flip": True,
        "crop_padding": 4,
        "rotation": 15.0,
        "color_jitter": [0.2, 0.2, 0.2, 0.1],
    }


def official_config(dataset: str, backbone: str) -> dict:
    """Optimiser / schedule / batch / epochs of the official ``regular_config`` for this pair, and its input
    pipeline (``normalize``, ``augment``) of ``data/data_loaders.py``."""
    if dataset not in DATASETS or backbone not in BACKBONES:
        raise ValueError(f"unknown pair ({dataset!r}, {backbone!r})")
    i = DATASETS.index(dataset)
    norm, aug = official_pipeline(dataset, backbone)
    pipeline = {"normalize": {k: list(v) for k, v in norm.items()}, "augment": dict(aug) if aug else None}
    if backbone in ("mlp", "cnn"):
        batch = {"mlp": (2048, 1024, 1024), "cnn": (8192, 4096, 512)}[backbone][i]
        sched = {"type": "step", "step_size": 50, "gamma": 0.5} if dataset == "cifar100" else None
        return {"optimizer": "adam", "lr": 3e-4, "weight_decay": 0.0, "epochs": (40, 40, 150)[i],
                "batch_size": batch, "scheduler": sched, **pipeline}  # fmt: skip
    sched = (
        {"type": "multistep", "milestones": [60, 100, 140], "gamma": 0.2}
        if dataset == "cifar100"
        else {"type": "step", "step_size": 30, "gamma": 0.1}
    )
    return {"optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4, "epochs": (100, 100, 200)[i],
            "batch_size": (512, 512, 256)[i], "scheduler": sched, **pipeline}  # fmt: skip

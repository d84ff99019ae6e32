"""``--scale full``: the paper's CIFAR-100 and Kuzushiji-49 experiments with ResNet-18, as the official
``experiment.py`` runs them.

Facts from the official code (Optimization-AI/ICML2023_LDR; ``experiment.py``, ``utils.py``, ``loss.py``):

* data: CIFAR-100 training set with label noise applied to all 50,000 training labels (``uniform_noise``
  or ``classDep_noise``, i.e. y -> (y + 1) mod 100), then ``KFold(n_splits=5)`` without shuffling: one
  fold's 40,000 images train, its 10,000 (noisy) images validate; the test set stays clean;
* augmentation (``ImageDataset_cifar``): random 30x30 crop without padding, horizontal flip, resize back
  to 32x32, normalise with mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010); test images
  are only normalised;
* model ``ResNet18(num_classes=100, inchannels=3)``; SGD (momentum 0.9, weight decay 5e-3, lr 0.01 by
  default), batch 64, loader without shuffling, 30 epochs with lr / 10 at epochs 10 and 20;
* losses: LDR-KL (lambda 10, margin 0.1), ALDR-KL with ``softplus=True`` (only for CIFAR-100), CE, and
  the baselines; test top-1 accuracy after each epoch (we report the last epoch's).

Since normalisation is a per-channel affine map and crop / flip / bilinear resize mix pixels with
weights that sum to one, normalising once before augmenting equals the official order.

Kuzushiji-49 (``dataset='k49'``) takes the official code's other image path: ``ResNet18(inchannels=1)``,
the same 30-epoch schedule, the generic ``classDep_noise`` (y -> (y + 1) mod 49), **no augmentation** (the
official script feeds it through ``TabularDataset``) and **class-balanced** top-k accuracy
(``balanced_accuracy``), since the classes are very imbalanced. The official ``datasets.KMNIST()`` (its
pixel scaling) could not be read; we feed pixels in [0, 1].
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ldr.experiments import make_loss, noisy_labels
from xentlab.data.local_images import LOCAL_IMAGE_SETS, image_data_root, load_train_test
from xentlab.models.cnn import build_resnet
from xentlab.train.minibatch import fit_epochs

DATA_ENV = "LDR_DATA_ROOT"
DATASETS = ("cifar100", "k49")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # the official ImageDataset_cifar constants (CIFAR-10's statistics)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def resolve_data_root(cfg: dict) -> Path:
    """The data folder: ``cfg['data_root']`` if set, else ``$LDR_DATA_ROOT``."""
    return image_data_root(cfg, DATA_ENV, DATASETS)


def load_image_dataset(name: str, root: Path):
    """(train, test) of one of ``DATASETS`` in [0, 1]; a missing file names the variable and the layout."""
    return load_train_test(name, root, env=DATA_ENV, datasets=DATASETS)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CIFAR_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def crop_flip_resize(x: torch.Tensor, crop: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The official training transform, batched: a random ``crop`` x ``crop`` window per image (no padding),
    mirrored with probability 1/2, resized back to the input size (bilinear)."""
    n, _, h, w = x.shape
    if not 0 < crop <= min(h, w):
        raise ValueError(f"crop must be in (0, {min(h, w)}], got {crop}")
    oy = torch.randint(0, h - crop + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, w - crop + 1, (n,), generator=generator).to(x.device)
    rows = oy[:, None] + torch.arange(crop, device=x.device)
    cols = ox[:, None] + torch.arange(crop, device=x.device)
    nidx = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[nidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    if crop != h or crop != w:
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out.contiguous()


def kfold_split(n: int, n_folds: int, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices of sklearn's unshuffled ``KFold``: fold ``fold`` validates on a
    contiguous block (the first ``n % n_folds`` blocks are one longer)."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}), got {fold}")
    sizes = [n // n_folds + (1 if i < n % n_folds else 0) for i in range(n_folds)]
    start = sum(sizes[:fold])
    val = torch.arange(start, start + sizes[fold])
    train = torch.cat([torch.arange(0, start), torch.arange(start + sizes[fold], n)])
    return train, val


@torch.no_grad()
def topk_hits(model, x: torch.Tensor, y: torch.Tensor, k: int = 1, batch: int = 1000) -> torch.Tensor:
    """Per-example bool: is the label among the model's top ``k`` scores (eval mode, restored after)."""
    was = model.training
    model.eval()
    hits = []
    for i in range(0, len(x), batch):
        top = model(x[i : i + batch]).topk(k, dim=1).indices
        hits.append((top == y[i : i + batch, None]).any(dim=1))
    model.train(was)
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool, device=x.device)


def topk_accuracy(model, x: torch.Tensor, y: torch.Tensor, k: int = 1, balanced: bool = False) -> float:
    """Top-k accuracy; ``balanced``: the mean over the classes present of the per-class accuracy (the
    official ``balanced_accuracy``, used for Kuzushiji-49)."""
    hits = topk_hits(model, x, y, k).float()
    if not balanced:
        return float(hits.mean()) if len(hits) else 0.0
    classes = torch.unique(y)
    return float(torch.stack([hits[y == c].mean() for c in classes]).mean())


def run_noisy_images(cfg: dict, seed: int, device: torch.device, log=None) -> dict:
    """Every loss of ``cfg['losses']`` on one noisy image setting (CIFAR-100 or K49): same fold, noisy
    labels, initial weights and batch order per seed. Test accuracy (clean labels) after the last epoch."""
    root = resolve_data_root(cfg)
    train, test = load_image_dataset(cfg["dataset"], root)
    k = LOCAL_IMAGE_SETS[cfg["dataset"]].num_classes
    prep = normalize if cfg["dataset"] == "cifar100" else (lambda x: x)  # K49: pixels in [0, 1] (see above)
    balanced = cfg["dataset"] == "k49"
    y_noisy = noisy_labels(train.y, k, cfg["dataset"], cfg["noise"], cfg["rate"], seed=10_000 + seed)
    tr, va = kfold_split(len(train), cfg["n_folds"], seed % cfg["n_folds"])
    if cfg.get("max_train"):
        tr = tr[: cfg["max_train"]]
    test_n = cfg.get("max_test") or len(test)
    x_all = prep(train.x).to(device)
    y_all = y_noisy.to(device)
    x_tr, y_tr, x_va, y_va = (
        x_all[tr.to(device)],
        y_all[tr.to(device)],
        x_all[va.to(device)],
        y_all[va.to(device)],
    )
    x_te, y_te = prep(test.x[:test_n]).to(device), test.y[:test_n].to(device)
    out: dict = {"actual_noise": float((y_noisy != train.y).float().mean()), "data_root": str(root)}
    for name in cfg["losses"]:
        t0 = time.perf_counter()
        torch.manual_seed(seed)  # same initial weights for every loss
        model = build_resnet(18, in_channels=x_all.shape[1], num_classes=k, width=cfg.get("width", 64)).to(
            device
        )
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"]
        )
        # ALDR-KL takes softplus scores on CIFAR-100 only (official experiment.py: softplus=True for cifar100)
        base = make_loss(
            name, {**cfg, "aldr_softplus": cfg["dataset"] == "cifar100"}, len(x_tr), device=device
        )
        gen = torch.Generator().manual_seed(20_000 + seed)

        def loss_fn(m, xb, yb, idx, base=base, gen=gen):
            if cfg["crop"]:  # CIFAR-100's official augmentation; K49 has none
                xb = crop_flip_resize(xb, cfg["crop"], generator=gen)
            return base(m, xb, yb, idx)

        def on_epoch(epoch, train_loss, model=model, name=name):
            if log is not None and (
                (epoch + 1) % cfg.get("eval_every", 5) == 0 or epoch + 1 == cfg["epochs"]
            ):
                log(
                    step=epoch + 1,
                    loss=name,
                    train_loss=train_loss,
                    test_acc=topk_accuracy(model, x_te, y_te),
                )

        fit_epochs(model, opt, x_tr, y_tr, loss_fn, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
                   shuffle=cfg["shuffle"], lr_milestones=cfg["milestones"], lr_gamma=0.1, on_epoch=on_epoch)  # fmt: skip
        # the official metric: top-1 / top-5 accuracy, class-balanced for K49
        out[f"acc_{name}"] = topk_accuracy(model, x_te, y_te, balanced=balanced)
        out[f"top5_{name}"] = topk_accuracy(model, x_te, y_te, k=5, balanced=balanced)
        out[f"val_acc_{name}"] = topk_accuracy(
            model, x_va, y_va, balanced=balanced
        )  # noisy val labels, as official
        if balanced:
            out[f"plain_acc_{name}"] = topk_accuracy(model, x_te, y_te)
        out[f"wall_s_{name}"] = time.perf_counter() - t0
    return out

"""--scale full: CE-tuning vs Core-tuning of a MoCo-v2 ResNet-50 on CIFAR-10, as the official ``Core-tuning.py``
runs it (README command ``-a resnet50-ssl -d cifar10 --eta_weight 0.1 --mixup_alpha 1 --train-batch 64
--accumulate_step 4``).

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``data_root`` / ``$CORE_TUNING_DATA_ROOT``: a folder holding ``cifar-10-batches-py/`` (the python version of
  CIFAR-10; ``xentlab.data.local_images``).
* ``checkpoint`` / ``$CORE_TUNING_MOCO_CHECKPOINT``: a MoCo-v2 ResNet-50 checkpoint. Either the official MoCo
  release (``moco_v2_800ep_pretrain.pth.tar``: ``{"state_dict": {"module.encoder_q.conv1.weight", ...}}``; the
  key encoder, the queue and the MLP head ``fc.*`` are dropped) or a plain torchvision-keyed state dict such as
  the authors' ``pretrain_moco_v2.pkl`` (``conv1.weight``, ``layer1.0.conv1.weight``, ...). Every backbone tensor
  must be present (the official ``strict=False`` would silently keep a random backbone).

The protocol of the official code (facts carried over, no code copied):

* ``ResnetSSLModel``: the ResNet-50 trunk (2048-d pooled feature h), a bias-free linear classifier and the
  ``Contrastor`` Linear(2048, 2048)-ReLU-Linear(2048, 256)-L2 (``core_tuning.model.FineTuneNet``).
* Training transform: Resize((272, 272), bicubic), RandomRotation(15) (nearest, fill 0), RandomCrop(256),
  RandomHorizontalFlip, ToTensor, Normalize(mean (0.507, 0.487, 0.441), std (0.267, 0.256, 0.276)); test
  transform: Resize(256, bicubic) (32x32 -> 256x256), ToTensor, Normalize. Implemented with PIL, as torchvision
  does on PIL images.
* SGD lr 0.01, momentum 0.9, weight decay 1e-4, Nesterov; ``CosineAnnealingLR(T_max=epochs)`` stepped once per
  epoch (the file defines ``adjust_learning_rate`` for "x0.1 at epochs 41 and 81" but never calls it); 100 epochs;
  micro-batches of 64 whose losses are divided by 4 and accumulated, one optimiser step every 4 micro-batches
  (effective batch 256). As in the official loop, gradients are zeroed only after a step, so the leftover
  micro-batches of an epoch are carried into the next epoch's first step.
* Core-tuning loss per micro-batch: soft-label CE on the 3B originals + mixes + eta * focal SupCon, eta 0.1,
  alpha 1, tau 0.07 (``core_tuning.mixup``, ``core_tuning.focal_supcon``; each micro-batch is mixed on its own).
  CE-tuning: cross-entropy of the classifier on the B originals, everything else identical.

Not official, on purpose: the official ``main`` reports the best *test* accuracy over the 100 epochs. Here
``n_val_per_class`` images per class (500 -> 5,000) are held out of the 50,000 training images once (fixed
``split_seed``, the same split for every seed and arm), the epoch of best validation accuracy is selected, and
the test set is scored once after training (``test_acc``; ``final_test_acc`` is the last epoch).
"""

from __future__ import annotations

import re
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core_tuning.focal_supcon import focal_supcon_loss
from core_tuning.mixup import feature_mixup, soft_cross_entropy
from core_tuning.model import FineTuneNet
from xentlab.data.local_images import LOCAL_IMAGE_SETS, image_data_root, load_train_test
from xentlab.models.resnet_bottleneck import build_bottleneck_resnet
from xentlab.repro.local_data import local_path

ENV_DATA = "CORE_TUNING_DATA_ROOT"
ENV_CHECKPOINT = "CORE_TUNING_MOCO_CHECKPOINT"
DATASETS = ("cifar10", "cifar100")
CIFAR_MEAN = (0.507, 0.487, 0.441)  # the official Normalize
CIFAR_STD = (0.267, 0.256, 0.276)


# --------------------------------------------------------------------------- checkpoint: MoCo-v2 -> backbone


def moco_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The query encoder of a MoCo checkpoint as torchvision ResNet keys, without the head ``fc.*``.

    ``module.encoder_q.X`` -> ``X`` (MoCo's DistributedDataParallel prefix + query encoder); ``encoder_k.*`` (the
    momentum encoder), ``queue`` and ``queue_ptr`` are dropped. A state dict without any ``encoder_q.`` key is
    taken as torchvision-keyed already (an optional ``module.`` prefix is stripped)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("encoder_q.") for k in state):
        state = {k.removeprefix("encoder_q."): v for k, v in state.items() if k.startswith("encoder_q.")}
    return {k: v for k, v in state.items() if not k.startswith("fc.") and k not in ("queue", "queue_ptr")}


def torchvision_to_xentlab(key: str) -> str:
    """torchvision ResNet key -> ``xentlab.models.resnet_bottleneck`` key (same layout, other names):
    conv1/bn1 -> stem.0/stem.1, layer{k}.{j}.downsample.{m} -> stages.{k-1}.{j}.shortcut.{m}."""
    if key.startswith("conv1."):
        return "stem.0." + key[len("conv1.") :]
    if key.startswith("bn1."):
        return "stem.1." + key[len("bn1.") :]
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.*)", key)
    if m is None:
        raise ValueError(f"not a ResNet backbone key: {key!r}")
    return f"stages.{int(m.group(1)) - 1}.{m.group(2)}.{m.group(3).replace('downsample.', 'shortcut.')}"


def load_moco_backbone(path, width: int = 64) -> nn.Module:
    """A ResNet-50 (``base_width`` = width; 64 is the real one, 2048-d feature) with the MoCo query encoder loaded
    strictly (every backbone tensor must be in the file); its ImageNet head is removed."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: expected a state dict or {{'state_dict': ...}} (MoCo checkpoint)")
    backbone = build_bottleneck_resnet(50, base_width=width)
    backbone.head = nn.Identity()  # the official `del self.extractor.fc; fc = identity`
    mapped = {torchvision_to_xentlab(k): v for k, v in moco_to_torchvision(state).items()}
    try:
        backbone.load_state_dict(mapped, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a ResNet-50 (width {width}) MoCo checkpoint: {e}") from None
    return backbone


# --------------------------------------------------------------------------- data: CIFAR with the official transforms


def stratified_val_split(y: np.ndarray, n_val_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices): ``n_val_per_class`` random images of every class go to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if not 0 < n_val_per_class < len(idx):
            raise ValueError(f"n_val_per_class={n_val_per_class} must be in (0, {len(idx)}) for class {c}")
        val.append(idx[:n_val_per_class])
        train.append(idx[n_val_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _normalise(img) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(CIFAR_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR_STD).view(3, 1, 1)


def train_transform(img, cfg: dict, rng: np.random.Generator) -> torch.Tensor:
    """Resize((r, r), bicubic) -> RandomRotation(+-deg, nearest, fill 0) -> RandomCrop(c) -> flip p 0.5."""
    from PIL import Image

    r, c = cfg["resize"], cfg["crop"]
    img = img.resize((r, r), Image.BICUBIC)
    angle = float(rng.uniform(-cfg["rotation"], cfg["rotation"]))
    img = img.rotate(angle, resample=Image.NEAREST, expand=False, fillcolor=(0, 0, 0))
    top, left = int(rng.integers(0, r - c + 1)), int(rng.integers(0, r - c + 1))
    img = img.crop((left, top, left + c, top + c))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return _normalise(img)


def eval_transform(img, cfg: dict) -> torch.Tensor:
    """Resize(s, bicubic) on a square image = (s, s), then ToTensor + Normalize."""
    from PIL import Image

    return _normalise(img.resize((cfg["test_resize"], cfg["test_resize"]), Image.BICUBIC))


class CifarImages(torch.utils.data.Dataset):
    """uint8 CIFAR images (N, 32, 32, 3) through the official transforms. Training crops come from a
    per-(seed, epoch, index) RNG, so a run is reproducible whatever the number of loader workers."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, cfg: dict, train: bool, seed: int = 0):
        self.images, self.labels, self.cfg, self.train, self.seed = images, labels, cfg, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i])
        if self.train:
            x = train_transform(img, self.cfg, np.random.default_rng([self.seed, self.epoch, i]))
        else:
            x = eval_transform(img, self.cfg)
        return x, int(self.labels[i])


def _as_uint8(x: torch.Tensor) -> np.ndarray:
    """ImageSet images in [0, 1] (N, 3, 32, 32) -> uint8 (N, 32, 32, 3), exact for CIFAR's k / 255 values."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


# --------------------------------------------------------------------------- one arm at one seed


@torch.no_grad()
def accuracy(model: FineTuneNet, loader, device) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        pred = model(x.to(device, non_blocking=True)).argmax(1).cpu()
        correct += int((pred == y).sum())
        total += len(y)
    return correct / total


def micro_batch_loss(model: FineTuneNet, x, y, cfg: dict, num_classes: int):
    """(total loss, CE part, contrastive part) of one micro-batch for arm ``cfg['arm']``."""
    h = model.features(x)
    if cfg["arm"] == "ce":
        ce = F.cross_entropy(model.classifier(h), y)
        return ce, ce, torch.zeros((), device=x.device)
    mixed = feature_mixup(h, y, num_classes, alpha=cfg["alpha"], negative_floor=cfg["negative_floor"],
                          detach_originals=cfg["detach_originals"],
                          official_argmin=cfg["official_argmin"])  # fmt: skip
    ce = soft_cross_entropy(model.classifier(mixed.features), mixed.soft_labels)
    con = focal_supcon_loss(model.contrastor(mixed.features), mixed.soft_labels, cfg["temperature"])
    return ce + cfg["eta"] * con, ce, con


def run_full(cfg: dict, seed: int, ctx) -> dict:
    """One arm (``cfg['arm']``: 'ce' or 'core') at one seed; accuracies in [0, 1]."""
    if cfg["arm"] not in ("ce", "core"):
        raise ValueError(f"arm must be 'ce' or 'core', got {cfg['arm']!r}")
    if cfg["dataset"] not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {cfg['dataset']!r}")
    root = image_data_root(cfg, ENV_DATA, (cfg["dataset"],))
    ckpt = local_path(
        cfg, "checkpoint", ENV_CHECKPOINT, needs="a MoCo-v2 ResNet-50 checkpoint (.pth.tar / .pkl)"
    )
    device = ctx.device
    t0 = time.time()
    train_set, test_set = load_train_test(cfg["dataset"], root, env=ENV_DATA, datasets=DATASETS)
    num_classes = LOCAL_IMAGE_SETS[cfg["dataset"]].num_classes
    x_all, y_all = _as_uint8(train_set.x), train_set.y.numpy()
    tr, va = stratified_val_split(y_all, cfg["n_val_per_class"], cfg["split_seed"])

    torch.manual_seed(seed)  # the same heads for both arms at this seed (built in the same order)
    model = FineTuneNet(load_moco_backbone(ckpt, cfg["width"]), num_classes, cfg["contrast_dim"]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"], nesterov=True)  # fmt: skip
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["epochs"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the official script

    kw = dict(num_workers=cfg["num_workers"], pin_memory=device.type == "cuda")
    train_ds = CifarImages(x_all[tr], y_all[tr], cfg, train=True, seed=seed)
    val_loader = torch.utils.data.DataLoader(
        CifarImages(x_all[va], y_all[va], cfg, train=False), batch_size=cfg["eval_batch"], **kw
    )
    test_loader = torch.utils.data.DataLoader(
        CifarImages(_as_uint8(test_set.x), test_set.y.numpy(), cfg, train=False),
        batch_size=cfg["eval_batch"],
        **kw,
    )
    shuffle = torch.Generator().manual_seed(seed)
    curves = {k: [] for k in ("ce_loss", "con_loss", "val_acc", "lr")}
    best_val, best_epoch, best_state = -1.0, -1, None
    opt.zero_grad(set_to_none=True)
    for epoch in ctx.progress(range(cfg["epochs"]), desc=cfg["arm"]):
        model.train()
        train_ds.epoch = epoch
        loader = torch.utils.data.DataLoader(
            train_ds, batch_size=cfg["batch_size"], shuffle=True, generator=shuffle, **kw
        )
        ce_l, con_l = [], []
        for i, (x, y) in enumerate(loader):
            if len(y) < 2:  # nothing to mix and BatchNorm fails on one sample
                continue
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss, ce, con = micro_batch_loss(model, x, y, cfg, num_classes)
            (loss / cfg["accumulate_steps"]).backward()
            if (i + 1) % cfg["accumulate_steps"] == 0:
                opt.step()
                opt.zero_grad(set_to_none=True)
            ce_l.append(ce.item())
            con_l.append(con.item())
        curves["lr"].append(opt.param_groups[0]["lr"])
        sched.step()
        val_acc = accuracy(model, val_loader, device)
        for k, v in (("ce_loss", np.mean(ce_l)), ("con_loss", np.mean(con_l)), ("val_acc", val_acc)):
            curves[k].append(float(v))
        if not np.isfinite(curves["ce_loss"][-1] + curves["con_loss"][-1]):
            raise FloatingPointError(f"loss became non-finite (arm {cfg['arm']}, seed {seed}, epoch {epoch})")
        if val_acc > best_val:  # first epoch of the best validation accuracy
            best_val, best_epoch = val_acc, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        ctx.log(step=epoch + 1, ce=curves["ce_loss"][-1], con=curves["con_loss"][-1], val_acc=val_acc)
    final_test_acc = accuracy(model, test_loader, device)
    model.load_state_dict(best_state)
    test_acc = accuracy(model, test_loader, device)
    return {
        "test_acc": test_acc,
        "final_test_acc": final_test_acc,
        "best_val_acc": best_val,
        "best_epoch": best_epoch + 1,
        "final_con_loss": curves["con_loss"][-1],
        "n_train": len(tr),
        "n_val": len(va),
        "n_test": len(test_set),
        "time_s": time.time() - t0,
        "curves": curves,
    }

"""--scale full: CUB-200-2011 with an ImageNet-pretrained ResNet-50, as the official ``main.py`` runs it.

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``data_root`` / ``$METRIX_DATA_ROOT``: the folder that holds ``CUB_200_2011/`` (or that folder itself),
  in the layout of the official tarball: ``images.txt`` (``<image id> <class dir>/<file>.jpg``),
  ``classes.txt`` (``<class id> <class dir>``), ``image_class_labels.txt`` (``<image id> <class id>``)
  and ``images/<class dir>/<file>.jpg``.
* ``pretrained`` / ``$METRIX_RESNET50_WEIGHTS``: a torchvision ``resnet50`` state dict (``.pth``), e.g.
  ``resnet50-0676ba61.pth`` (IMAGENET1K_V1, what ``resnet50(pretrained=True)`` loaded in torchvision 0.8).

The protocol of the official code (billpsomas/metrix ``main.py``, ``dataset/cub.py``,
``dataset/utils.py``, ``net/feature_resnet.py``) and its README commands:

* classes 1-100 train, 101-200 test (zero-shot retrieval on unseen classes), random batches of 100 with
  ``drop_last`` (the CUB setting), random-resized crop 224 + horizontal flip for training, resize 256 +
  centre crop 224 for test, ImageNet mean/std;
* ResNet-50 trunk -> GAP + GMP (summed) -> Linear(2048, d) (Kaiming fan-out, bias 0) -> L2 norm;
* frozen BatchNorm (``bn_freeze 1``: eval mode throughout, affine parameters frozen at construction);
* warm-up (``warm 5``): for the first 5 epochs only the embedding layer trains; at epoch 5 every other
  parameter is unfrozen (the official loop unfreezes the BN affine parameters too, and so do we);
* Adam lr 1e-4, weight decay 1e-4, StepLR(10, 0.1) stepped every epoch (also during warm-up);
* losses: the package's ``metrix_step_loss`` (contrastive, + Metrix in embed or feature mode).

Recall@K on the 100 test classes after the last epoch is reported (the official code keeps the best
test-set epoch; we do not select on the test classes). Test R@1 is logged per epoch for the figure only.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from metrix.experiment import RunConfig, metrix_step_loss, recall_at_k
from xentlab.models.resnet_bottleneck import build_bottleneck_resnet
from xentlab.repro.local_data import MissingLocalData, local_path

ENV_DATA = "METRIX_DATA_ROOT"
ENV_WEIGHTS = "METRIX_RESNET50_WEIGHTS"
CUB_LAYOUT = (
    "CUB_200_2011/{images.txt, classes.txt, image_class_labels.txt, images/<class dir>/<file>.jpg} "
    "(the official CUB_200_2011.tgz, extracted)"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- data: CUB-200-2011


@dataclass(frozen=True)
class CubSplit:
    paths: list[Path]
    labels: list[int]  # 0-based class index (class id - 1)


def _read_table(path: Path) -> dict[int, str]:
    """``<int id> <value>`` per line (the CUB metadata files)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    out = {}
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        if not key.isdigit() or not value:
            raise ValueError(f"{path} line {i + 1}: expected '<id> <value>', got {line!r}")
        out[int(key)] = value.strip()
    return out


def cub_folder(root: Path) -> Path:
    """``root/CUB_200_2011`` if present, else ``root`` itself."""
    return root / "CUB_200_2011" if (root / "CUB_200_2011").is_dir() else root


def load_cub(root: Path, n_train_classes: int = 100) -> tuple[CubSplit, CubSplit]:
    """(train, test): classes with id <= n_train_classes train, the rest test (``dataset/cub.py``: classes
    0-99 / 100-199 of the sorted class folders, which are the class ids 1-100 / 101-200)."""
    folder = cub_folder(Path(root).expanduser())
    try:
        images = _read_table(folder / "images.txt")
        labels = _read_table(folder / "image_class_labels.txt")
        classes = _read_table(folder / "classes.txt")
    except FileNotFoundError as e:
        raise MissingLocalData(
            f"CUB-200-2011 not found under {root} ({ENV_DATA}); expected {CUB_LAYOUT}. [{e}]"
        ) from None
    if not 1 <= n_train_classes < len(classes):
        raise ValueError(f"n_train_classes={n_train_classes} must leave test classes ({len(classes)} in all)")
    train, test = CubSplit([], []), CubSplit([], [])
    for image_id, rel in sorted(images.items()):
        if Path(rel).name.startswith("._"):  # macOS resource forks, skipped as in dataset/cub.py
            continue
        cls = int(labels[image_id])
        split = train if cls <= n_train_classes else test
        split.paths.append(folder / "images" / rel)
        split.labels.append(cls - 1)
    missing = [p for p in (train.paths[:1] + test.paths[:1]) if not p.is_file()]
    if missing or not train.paths or not test.paths:
        raise MissingLocalData(
            f"CUB images missing under {folder / 'images'} ({ENV_DATA}); expected {CUB_LAYOUT}"
        )
    return train, test


# --------------------------------------------------------------------------- transforms (torchvision semantics)


def random_resized_crop_box(
    w: int, h: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
):
    """torchvision ``RandomResizedCrop.get_params``: 10 tries of an area fraction ~ U(scale) and a
    log-uniform aspect ratio; otherwise the whole image clamped to the ratio range, centred."""
    area = w * h
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(*log_r))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return x0, y0, cw, ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        cw, ch = int(round(h * ratio[1])), h
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def _to_tensor(img) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def train_transform(img, size: int, rng: np.random.Generator) -> torch.Tensor:
    """RandomResizedCrop(size) + RandomHorizontalFlip + ToTensor + Normalize (``make_transform(True)``)."""
    from PIL import Image

    x0, y0, cw, ch = random_resized_crop_box(*img.size, rng)
    img = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return _to_tensor(img)


def eval_transform(img, resize: int, size: int) -> torch.Tensor:
    """Resize(resize) (shorter side) + CenterCrop(size) + ToTensor + Normalize (``make_transform(False)``)."""
    from PIL import Image

    w, h = img.size
    nw, nh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - size) / 2)), int(round((nh - size) / 2))
    return _to_tensor(img.crop((left, top, left + size, top + size)))


class CubImages(torch.utils.data.Dataset):
    """Decoded, transformed CUB images. Training crops are drawn from a per-(seed, epoch, index) RNG, so
    a run is reproducible whatever the number of loader workers."""

    def __init__(self, split: CubSplit, train: bool, size: int, resize: int, seed: int = 0):
        self.split, self.train, self.size, self.resize, self.seed = split, train, size, resize, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.split.paths[i]) as im:
            img = im.convert("RGB")  # a few CUB images are greyscale / CMYK
        if self.train:
            x = train_transform(img, self.size, np.random.default_rng([self.seed, self.epoch, i]))
        else:
            x = eval_transform(img, self.resize, self.size)
        return x, self.split.labels[i]


# --------------------------------------------------------------------------- model: ResNet-50 embedder


def torchvision_to_xentlab(key: str) -> str | None:
    """Map a torchvision ResNet state-dict key onto ``xentlab.models.resnet_bottleneck`` (same layout,
    other names); ``fc.*`` (the ImageNet classifier) maps to None (dropped, as the official head replaces it).
    conv1/bn1 -> stem.0/stem.1, layer{k}.{j}.downsample.{m} -> stages.{k-1}.{j}.shortcut.{m}."""
    if key.startswith("fc."):
        return None
    if key.startswith("conv1."):
        return "stem.0." + key[6:]
    if key.startswith("bn1."):
        return "stem.1." + key[4:]
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(.*)", key)
    if m is None:
        raise ValueError(f"not a torchvision ResNet key: {key!r}")
    rest = m.group(3).replace("downsample.", "shortcut.")
    return f"stages.{int(m.group(1)) - 1}.{m.group(2)}.{rest}"


def xentlab_to_torchvision(key: str) -> str:
    """The inverse of ``torchvision_to_xentlab`` (head.* -> fc.*), e.g. to write a test fixture."""
    if key.startswith("head."):
        return "fc." + key[5:]
    if key.startswith("stem.0."):
        return "conv1." + key[7:]
    if key.startswith("stem.1."):
        return "bn1." + key[7:]
    m = re.fullmatch(r"stages\.(\d)\.(\d+)\.(.*)", key)
    if m is None:
        raise ValueError(f"not a xentlab bottleneck ResNet key: {key!r}")
    return f"layer{int(m.group(1)) + 1}.{m.group(2)}.{m.group(3).replace('shortcut.', 'downsample.')}"


class ResNet50Embedder(nn.Module):
    """``net/feature_resnet.Resnet50``: trunk (conv1 .. layer4) -> GAP + GMP -> Linear -> L2 norm.
    ``trunk`` and ``head`` are separate, as ``metrix_step_loss`` mixes the layer4 maps in feature mode."""

    def __init__(self, embedding_size: int, width: int = 64):
        super().__init__()
        backbone = build_bottleneck_resnet(50, base_width=width)
        self.width = width
        self.trunk = nn.Sequential(backbone.stem, backbone.stages)
        self.embedding = nn.Linear(backbone.feature_dim, embedding_size)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")  # _initialize_weights
        nn.init.zeros_(self.embedding.bias)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        pooled = fmap.amax(dim=(2, 3)) + fmap.mean(dim=(2, 3))  # gmp + gap
        e = self.embedding(pooled)
        return e / torch.sqrt(e.pow(2).sum(1, keepdim=True) + 1e-12)  # the official l2_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def load_torchvision(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision resnet50 state dict into the trunk (strict: every trunk tensor must be there;
        ``fc.*`` is dropped). The trunk is Sequential(stem, stages), so stem.* -> 0.*, stages.* -> 1.*."""
        mapped = {}
        for k, v in state.items():
            new = torchvision_to_xentlab(k)
            if new is not None:
                mapped[new.replace("stem.", "0.", 1).replace("stages.", "1.", 1)] = v
        try:
            self.trunk.load_state_dict(mapped, strict=True)
        except RuntimeError as e:
            raise ValueError(f"not a torchvision resnet50 state dict of width {self.width}: {e}") from None


def freeze_batchnorm(model: ResNet50Embedder) -> None:
    """``bn_freeze``: running statistics fixed (eval mode); called after every ``model.train()``."""
    for m in model.trunk.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


# --------------------------------------------------------------------------- one run


@torch.no_grad()
def embed_loader(model: nn.Module, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    embs, ys = [], []
    for x, y in loader:
        embs.append(model(x.to(device, non_blocking=True)).float().cpu())
        ys.append(torch.as_tensor(y))
    return torch.cat(embs), torch.cat(ys)


def run_full(cfg: dict, seed: int, ctx) -> dict:
    """One arm (``cfg["mode"]``) at one seed on CUB-200-2011; R@K in % after the last epoch."""
    data_root = local_path(
        cfg, "data_root", ENV_DATA, needs=f"a folder holding {CUB_LAYOUT}", must_exist=False
    )
    weights = local_path(
        cfg, "pretrained", ENV_WEIGHTS, needs="a torchvision resnet50 ImageNet state dict (.pth)"
    )
    device = ctx.device
    train_split, test_split = load_cub(data_root, cfg["n_train_classes"])
    rc = RunConfig(mode=cfg["mode"], alpha=cfg["alpha"], w_posneg=cfg["w_posneg"],
                   w_ancneg_embed=cfg["w_ancneg_embed"], w_ancneg_feature=cfg["w_ancneg_feature"])  # fmt: skip

    torch.manual_seed(seed)  # identical embedding-layer init for every arm at this seed
    model = ResNet50Embedder(cfg["embedding_size"], width=cfg["width"])
    model.load_torchvision(torch.load(weights, map_location="cpu", weights_only=True))
    model.to(device)
    bn_params = [p for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    if cfg["bn_freeze"]:
        for p in bn_params:
            p.requires_grad_(False)  # feature_resnet.__init__
    embed_params = list(model.embedding.parameters())
    trunk_params = list(model.trunk.parameters())
    # two groups at the same lr (main.py's param_groups: backbone, embedding x 1)
    opt = torch.optim.Adam(
        [{"params": trunk_params}, {"params": embed_params, "lr": cfg["lr"]}],
        lr=cfg["lr"],
        weight_decay=cfg["weight_decay"],
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg["lr_decay_step"], gamma=cfg["lr_decay_gamma"])

    loader_kw = dict(num_workers=cfg["num_workers"], pin_memory=device.type == "cuda")
    train_ds = CubImages(train_split, True, cfg["image_size"], cfg["resize"], seed)
    test_loader = torch.utils.data.DataLoader(
        CubImages(test_split, False, cfg["image_size"], cfg["resize"]),
        batch_size=cfg["eval_batch"],
        **loader_kw,
    )
    batch_rng = torch.Generator().manual_seed(seed)  # identical batches for every arm at this seed
    mix_rng = random.Random(seed)  # scheme (random.randint(0, 1) in train.py)
    lam_rng = np.random.default_rng(seed)  # lam ~ Beta(alpha, alpha)
    curve, losses = [], []
    epochs = range(cfg["epochs"])
    for epoch in ctx.progress(epochs, desc=cfg["mode"]):
        # warm-up (main.py): only the embedding layer trains for the first `warm` epochs
        if cfg["warm"] > 0 and epoch in (0, cfg["warm"]):
            for p in trunk_params:
                p.requires_grad_(epoch == cfg["warm"])
        model.train()
        if cfg["bn_freeze"]:
            freeze_batchnorm(model)
        train_ds.epoch = epoch
        perm = torch.randperm(len(train_ds), generator=batch_rng)  # shuffle + drop_last
        n_batches = len(perm) // cfg["batch_size"]
        batches = perm[: n_batches * cfg["batch_size"]].view(n_batches, -1).tolist()
        loader = torch.utils.data.DataLoader(train_ds, batch_sampler=batches, **loader_kw)
        ep_loss = []
        for x, y in loader:
            scheme, lam = mix_rng.randint(0, 1), float(lam_rng.beta(rc.alpha, rc.alpha))
            loss = metrix_step_loss(model, x.to(device), torch.as_tensor(y).to(device), rc, scheme, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), cfg["clip_value"])
            opt.step()
            ep_loss.append(loss.item())
        sched.step()
        losses.append(float(np.mean(ep_loss)) if ep_loss else float("nan"))
        if cfg["eval_every"] and (epoch + 1) % cfg["eval_every"] == 0:
            r = recall_at_k(*embed_loader(model, test_loader, device), ks=(1,))
            curve.append(100 * r[1])  # logged only; no epoch is selected on the test classes
        ctx.log(step=epoch + 1, loss=losses[-1], **({"test_r1": curve[-1]} if curve else {}))
    emb, y = embed_loader(model, test_loader, device)
    r = recall_at_k(emb, y, tuple(cfg["recall_ks"]))
    out: dict = {f"r{k}": 100 * v for k, v in r.items()}
    out.update(r1_curve=curve, loss_curve=losses, n_train=len(train_ds), n_test=len(y))
    return out

"""--scale full: the official RePRI test protocol on PASCAL-5i with a base-trained PSPNet-ResNet50 checkpoint
(``src/test.py`` ``episodic_validate``, ``src/dataset/dataset.py`` ``EpisodicData``, ``config_files/pascal.yaml``,
``scripts/test.sh``). No base training is run: the checkpoint is the released one or one trained with the
official ``scripts/train.sh``.

Inputs (config key or environment variable; nothing is downloaded, see ``xentlab.repro.local_data``):

* ``data_root`` / ``$REPRI_DATA_ROOT``: the official ``data/pascal/`` folder: ``JPEGImages/<id>.jpg`` (VOC2012)
  and ``SegmentationClassAug/<id>.png`` (SBD-augmented masks, one byte per pixel: 0 background, 1-20 classes,
  255 void).
* ``lists`` / ``$REPRI_LISTS``: the official ``lists/pascal/`` folder (or its ``val.txt``): one
  ``JPEGImages/<id>.jpg SegmentationClassAug/<id>.png`` pair per line, relative to the data root.
* ``checkpoints`` / ``$REPRI_CHECKPOINTS``: the official ``model_ckpt/`` folder (or the folder holding it) with
  ``pascal/split=<fold>/model/pspnet_resnet50/smoothing=True/mixup=False/best.pth`` per fold, or a path containing
  ``{fold}`` (e.g. ``/ckpt/fold{fold}.pth``). Format: ``{'state_dict': {'module.layer0.0.weight', ...}}``.

Protocol (seed k -> fold k % 4, the PASCAL-5i split: novel classes 5f+1 .. 5f+5):

* images of ``val.txt`` that hold at least one novel class on >= 2 x 32 x 32 pixels are the episode pool
  (``make_dataset``); a query walks that list in order (the official loader has ``shuffle=False`` and keeps its
  iterator across runs), its class is drawn uniformly among the novel classes present in it, and ``shots``
  distinct supports are drawn uniformly among the other pool images holding that class on >= 2048 pixels;
* every image: the official test ``Resize(417)`` (longest side to 417, both sides floored to a multiple of 8,
  bilinear; padded with 0 to 417 x 417, masks nearest-neighbour and padded with 255) and ImageNet
  normalisation; features = PSPNet ``extract_features`` in eval mode (53 x 53 x 512), L2-normalised over
  channels (``norm_feat``). As the network is frozen and the transform deterministic, each image's features
  are computed once and reused (the official loop recomputes the same values per episode);
* every inference arm of ``repri.experiment.arms`` (the package's ``run_repri`` / ``predict``, unchanged) on
  the same episodes; predictions upsampled bilinearly to 417 x 417 and scored against the resized query mask;
* mIoU over the novel classes with intersection/union accumulated per class over a run's episodes; ``n_runs``
  runs of ``episodes`` episodes (``scripts/test.sh``: 5 x 1000), the reported value is the mean over runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from repri.classifier import IGNORE, downsample_mask, predict, run_repri, true_proportion
from repri.episodes import IoUAccumulator, fg_intersection_union
from repri.experiment import arms
from repri.pspnet import PSPNet, load_official_checkpoint
from xentlab.repro.local_data import MissingLocalData, local_path

ENV_DATA = "REPRI_DATA_ROOT"
ENV_LISTS = "REPRI_LISTS"
ENV_CHECKPOINTS = "REPRI_CHECKPOINTS"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VOC_LAYOUT = "JPEGImages/<id>.jpg + SegmentationClassAug/<id>.png (the official data/pascal/)"


def novel_classes(fold: int) -> list[int]:
    """PASCAL-5i: fold f tests classes 5f+1 .. 5f+5 (``get_split_classes``)."""
    if fold not in (0, 1, 2, 3):
        raise ValueError(f"fold must be 0-3, got {fold}")
    return list(range(5 * fold + 1, 5 * fold + 6))


def read_list(lists: Path, data_root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) paths of the official ``val.txt`` (lines ``JPEGImages/x.jpg SegmentationClassAug/x.png``)."""
    path = lists / "val.txt" if lists.is_dir() else lists
    if not path.is_file():
        raise MissingLocalData(f"{path} not found ({ENV_LISTS}): expected the official lists/pascal/val.txt")
    pairs = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path} line {i + 1}: expected '<image> <mask>', got {line!r}")
        pairs.append((data_root / parts[0], data_root / parts[1]))
    return pairs


def read_mask(path: Path) -> np.ndarray:
    """Class indices (H, W) uint8: the byte values of a grey-level PNG, the palette indices of a 'P' PNG."""
    from PIL import Image

    if not path.is_file():
        raise MissingLocalData(f"mask {path} not found ({ENV_DATA}); expected {VOC_LAYOUT}")
    with Image.open(path) as im:
        if im.mode not in ("L", "P"):
            raise ValueError(f"{path}: a label PNG must be one channel ('L' or 'P'), got mode {im.mode}")
        return np.array(im)


@dataclass
class EpisodePool:
    """The fold's episode pool (official ``make_dataset`` on val.txt with the novel classes)."""

    pairs: list[tuple[Path, Path]]
    """(image, mask) of every pool image, in list order"""
    present: list[list[int]]
    """novel classes present in each pool image (any pixel count): the query's class choices"""
    by_class: dict[int, np.ndarray]
    """novel class -> pool indices where it covers >= min_pixels pixels: the support candidates"""


def build_pool(pairs: list[tuple[Path, Path]], classes: list[int], min_pixels: int) -> EpisodePool:
    keep, present, by_class = [], [], {c: [] for c in classes}
    for img, mask_path in pairs:
        mask = read_mask(mask_path)
        counts = {c: int((mask == c).sum()) for c in classes}
        big = [c for c in classes if counts[c] >= min_pixels]
        if not big:
            continue
        for c in big:
            by_class[c].append(len(keep))
        keep.append((img, mask_path))
        present.append([c for c in classes if counts[c] > 0])
    if not keep:
        raise ValueError(f"no image of the list holds a class of {classes} on >= {min_pixels} pixels")
    return EpisodePool(keep, present, {c: np.array(v, dtype=np.int64) for c, v in by_class.items()})


def sample_episodes(pool: EpisodePool, n: int, shots: int, start: int, rng: np.random.Generator):
    """``n`` episodes (query, supports, class) from list position ``start`` on (cycling), and the next position."""
    queries, supports, classes = [], [], []
    for k in range(n):
        q = (start + k) % len(pool.pairs)
        c = int(pool.present[q][rng.integers(len(pool.present[q]))])
        cands = pool.by_class[c][pool.by_class[c] != q]
        if len(cands) < shots:
            raise ValueError(f"class {c} has {len(cands)} support candidates for a {shots}-shot episode")
        queries.append(q)
        supports.append(rng.choice(cands, size=shots, replace=False))
        classes.append(c)
    return np.array(queries), np.stack(supports), np.array(classes), start + n


def find_new_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """The official test ``Resize``: the longest side to ``size``, the other by the ratio (truncated), then both
    floored to a multiple of 8."""
    if h >= w:
        new_h, new_w = size, int(w * size / h)
    else:
        new_h, new_w = int(h * size / w), size
    return new_h // 8 * 8, new_w // 8 * 8


def load_pair(img_path: Path, mask_path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised image (3, size, size), mask (size, size) uint8) as the official val transform.

    cv2's INTER_LINEAR on float images is bilinear with half-pixel centres and no antialiasing, i.e.
    ``F.interpolate(mode='bilinear', align_corners=False)``; INTER_NEAREST is ``mode='nearest'`` (floor of
    dst * src/dst). Padding: 0 in pixel space for the image (before normalisation), 255 for the mask."""
    from PIL import Image

    if not img_path.is_file():
        raise MissingLocalData(f"image {img_path} not found ({ENV_DATA}); expected {VOC_LAYOUT}")
    with Image.open(img_path) as im:
        img = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
    mask = torch.from_numpy(read_mask(mask_path))
    if img.shape[1:] != mask.shape:
        raise ValueError(
            f"image and mask sizes differ: {img_path} {tuple(img.shape[1:])} vs {tuple(mask.shape)}"
        )
    new_h, new_w = find_new_hw(*mask.shape, size)
    img = F.interpolate(img[None], (new_h, new_w), mode="bilinear", align_corners=False)[0]
    mask = F.interpolate(mask[None, None].float(), (new_h, new_w), mode="nearest")[0, 0].to(torch.uint8)
    img_pad = torch.zeros(3, size, size)
    img_pad[:, :new_h, :new_w] = img
    mask_pad = torch.full((size, size), IGNORE, dtype=torch.uint8)
    mask_pad[:new_h, :new_w] = mask
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (img_pad / 255 - mean) / std, mask_pad


def episode_masks(masks: torch.Tensor, idx: np.ndarray, cls: np.ndarray) -> torch.Tensor:
    """(T, K, S, S) episode masks of images ``idx`` (T, K) for classes ``cls`` (T,): 1 on the class, 255 kept,
    0 elsewhere (``EpisodicData``; other objects, base or novel, are background)."""
    m = masks[torch.from_numpy(idx.reshape(-1))].view(*idx.shape, *masks.shape[1:]).long()
    c = torch.from_numpy(cls).view(-1, 1, 1, 1)
    return torch.where(m == IGNORE, IGNORE, (m == c).long())


@torch.no_grad()
def pool_features(
    model: PSPNet, pool: EpisodePool, size: int, device, batch: int, progress=lambda it, **k: it
):
    """L2-normalised features (N, C, h, w) on ``device`` and resized masks (N, size, size) of every pool image."""
    feats, masks = [], []
    for i in progress(range(0, len(pool.pairs), batch), desc="features"):
        imgs, ms = zip(*(load_pair(*p, size) for p in pool.pairs[i : i + batch]))
        f = model.extract_features(torch.stack(imgs).to(device))
        feats.append(F.normalize(f, dim=1))  # norm_feat: L2 over channels
        masks.append(torch.stack(ms))
    return torch.cat(feats), torch.cat(masks)


def checkpoint_path(cfg: dict, fold: int) -> Path:
    base = local_path(
        cfg, "checkpoints", ENV_CHECKPOINTS,
        needs="the official model_ckpt/ folder (pascal/split=<fold>/model/pspnet_resnet50/smoothing=True/"
        "mixup=False/best.pth) or a path with {fold}", must_exist=False,
    )  # fmt: skip
    if "{fold}" in str(base):
        path = Path(str(base).format(fold=fold))
        candidates = [path]
    else:
        rel = Path(f"pascal/split={fold}/model/pspnet_resnet{cfg['layers']}/smoothing=True/mixup=False")
        candidates = [
            base / rel / f"{cfg['ckpt_used']}.pth",
            base / "model_ckpt" / rel / f"{cfg['ckpt_used']}.pth",
        ]
    for path in candidates:
        if path.is_file():
            return path
    raise MissingLocalData(f"no checkpoint for fold {fold} ({ENV_CHECKPOINTS}); looked for {candidates[0]}")


def run_full(cfg: dict, seed: int, ctx) -> dict:
    """Fold ``seed % 4``: every arm on ``n_runs`` x ``episodes`` episodes per shot setting; mIoU in percent."""
    data_root = local_path(cfg, "data_root", ENV_DATA, needs=f"a folder holding {VOC_LAYOUT}")
    lists = local_path(cfg, "lists", ENV_LISTS, needs="the official lists/pascal/ folder (val.txt)")
    fold = seed % 4 if cfg.get("fold") is None else cfg["fold"]
    ckpt = checkpoint_path(cfg, fold)
    device, t0 = ctx.device, time.perf_counter()
    classes = novel_classes(fold)
    pool = build_pool(read_list(lists, data_root), classes, cfg["min_pixels"])

    model = PSPNet(cfg["num_classes_tr"], width=cfg["width"], bottleneck_dim=cfg["bottleneck_dim"],
                   bins=tuple(cfg["bins"]), dropout=cfg["dropout"])  # fmt: skip
    meta = load_official_checkpoint(model, ckpt)
    model.to(device).eval()
    feats, masks = pool_features(model, pool, cfg["image_size"], device, cfg["feature_batch"], ctx.progress)
    t_feat = time.perf_counter() - t0
    del model
    h, w = feats.shape[-2:]
    size = (cfg["image_size"], cfg["image_size"])
    arm_cfgs = {k: v for k, v in arms(cfg["adapt_iter"], cfg["oracle_official_iter"]).items()
                if k in cfg["arm_names"]}  # fmt: skip
    rng = np.random.default_rng(np.random.SeedSequence([cfg["manual_seed"], seed]))
    out: dict = {"fold": fold, "n_pool_images": len(pool.pairs), "checkpoint_epoch": meta["epoch"]}
    for shots in cfg["shots"]:
        position = 0  # the official loader's iterator continues from run to run
        run_miou = {name: [] for name in arm_cfgs}
        pi_err = {"init": [], "final": []}
        for run in range(cfg["n_runs"]):
            q, s, c, position = sample_episodes(pool, cfg["episodes"], shots, position, rng)
            acc = {name: IoUAccumulator() for name in arm_cfgs}
            step = cfg["tasks_per_batch"]
            for b in range(0, len(q), step):
                qb, sb, cb = q[b : b + step, None], s[b : b + step], c[b : b + step]
                t = len(qb)
                f_s = feats[torch.from_numpy(sb.reshape(-1)).to(device)].view(t, shots, *feats.shape[1:])
                f_q = feats[torch.from_numpy(qb.reshape(-1)).to(device)].unsqueeze(1)
                gt_s = episode_masks(masks, sb, cb).to(device)
                gt_q = episode_masks(masks, qb, cb).to(device)
                gt_s_ds, gt_q_ds = downsample_mask(gt_s, (h, w)), downsample_mask(gt_q, (h, w))
                valid_q = (gt_q_ds != IGNORE).float()
                pi_true = true_proportion(gt_q_ds)
                for name, arm in arm_cfgs.items():
                    with torch.enable_grad():
                        res = run_repri(f_s, f_q, gt_s_ds, valid_q, arm,
                                        pi_oracle=pi_true if arm.fb_type == "oracle" else None)  # fmt: skip
                    pred = predict(f_q, res, arm.temperature, size)
                    inter, union = fg_intersection_union(pred, gt_q[:, 0])
                    acc[name].update(cb, inter.cpu(), union.cpu())
                    if name == "repri":
                        pi_err["init"].append((res.pi_init[:, 1] - pi_true[:, 1]).abs().cpu())
                        pi_err["final"].append((res.pi_final[:, 1] - pi_true[:, 1]).abs().cpu())
            for name in arm_cfgs:
                run_miou[name].append(100.0 * acc[name].miou())
            ctx.log(step=run, shots=shots, **{f"miou_{name}": v[-1] for name, v in run_miou.items()})
        for name, vals in run_miou.items():
            out[f"miou_{shots}shot_{name}"] = float(np.mean(vals))
        if pi_err["init"]:
            out[f"pi_err_{shots}shot_init"] = float(torch.cat(pi_err["init"]).mean())
            out[f"pi_err_{shots}shot_final"] = float(torch.cat(pi_err["final"]).mean())
        out[f"miou_runs_{shots}shot"] = run_miou
    out["time_features_s"] = t_feat
    out["time_eval_s"] = time.perf_counter() - t0 - t_feat
    return out

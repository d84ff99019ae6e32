"""Episodic ProtoNet training with CE, CE + Proto-Triplet or CE + ICNN, model selection on meta-val classes,
and 5-way 1-/5-shot evaluation on meta-test classes (disjoint class splits)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from susana.losses import episode_loss, proto_logits, prototypes


@dataclass
class RunConfig:
    """One arm: data, backbone, episodic training and evaluation settings."""

    triplet: bool = False  # the arm: CE only (ProtoNet) or (CE + Proto-Triplet) / 2
    margin: float = 0.5  # Proto-Triplet margin (official code)
    icnn: bool = False  # add the ICNN loss (full variant: support + query): (CE + [PT] + ICNN) / #losses
    icnn_k: int = 4  # ICNN neighbours (paper / official default)
    temperature: float = 1.0  # ProtoNet logits -||q - c||^2 / temperature (official default 1)
    # data: "shapes" = procedural glyph/shape classes; "folder" = miniImageNet-style train/val/test folders
    dataset: str = "shapes"
    data_root: str | None = None
    n_per_class: int = 30  # shapes: images per class
    image_size: int = 16
    max_per_class: int | None = None  # folder: cap images per class (memory)
    # Conv-4 backbone: 4 x (conv3x3, BN, ReLU, maxpool 2)
    channels: int = 32
    # episodic training (5-way 5-shot, as in the notes)
    n_way: int = 5
    train_shot: int = 5
    n_query: int = 10
    episodes: int = 600
    lr: float = 1e-3
    # optional step schedule (the author's FSL-Loss train.py: StepLR(step_size=20 epochs, gamma=0.5) with
    # train_epi = 100 episodes per epoch, i.e. the lr halves every 2000 episodes); None = constant lr (the
    # default; the cpu and full configs of reproduce.py set 2000 / 0.5)
    lr_step: int | None = None
    lr_gamma: float = 0.5
    val_every: int = 100  # select the checkpoint on meta-val 5-way 1-shot accuracy
    val_episodes: int = 200
    test_episodes: int = 600
    test_query: int = 15

    def __post_init__(self) -> None:
        if self.lr_step is not None and self.lr_step < 1:
            raise ValueError(f"lr_step must be None or >= 1 episodes, got {self.lr_step}")
        if self.lr_step is not None and not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_gamma must lie in (0, 1], got {self.lr_gamma}")


def scheduled_lr(cfg: RunConfig, episodes_done: int) -> float:
    """Learning rate for the next episode after ``episodes_done`` episodes: lr * gamma^(done // lr_step)."""
    if cfg.lr_step is None:
        return cfg.lr
    return cfg.lr * cfg.lr_gamma ** (episodes_done // cfg.lr_step)


# class splits for the shapes data: 12 shapes + 10 digits + 26 upper + 26 lower case letters = 74 classes
GLYPH_CLASSES: tuple[str, ...] = (
    "circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "ring", "crescent", "arrow",
    "heart", "bowtie",
) + tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")  # fmt: skip
SPLIT_SIZES = (46, 12, 16)  # meta-train / meta-val / meta-test classes (~ the 64/16/20 proportions)


def conv4(channels: int, in_ch: int = 3) -> nn.Module:
    """Conv-4 (Vinyals et al.; Snell et al.): four conv-BN-ReLU-maxpool blocks, flattened output."""
    layers, c = [], in_ch
    for _ in range(4):
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
        c = channels
    return nn.Sequential(*layers, nn.Flatten())


def load_splits(
    cfg: RunConfig, which: tuple[str, ...] = ("train", "val", "test")
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"train","val","test"} -> (images, labels 0..C-1 within the split); classes are disjoint.

    `which` limits the splits that are loaded (the budget pilot never loads "test")."""
    if cfg.dataset == "shapes":
        from xentlab.data.shapes import ShapesConfig, load_shapes

        # one fixed class split (seed 0), like miniImageNet's fixed split; training seeds vary the rest
        order = np.random.default_rng(0).permutation(len(GLYPH_CLASSES))
        out, start = {}, 0
        for name, n in zip(("train", "val", "test"), SPLIT_SIZES):
            classes = tuple(GLYPH_CLASSES[i] for i in order[start : start + n])
            start += n
            if name not in which:
                continue
            data = load_shapes(
                ShapesConfig(classes=classes, n_per_class=cfg.n_per_class, size=cfg.image_size), seed=0
            )
            out[name] = (data.x, data.y)
        return out
    if cfg.dataset == "folder":
        from xentlab.data.images import load_image_folder

        if cfg.data_root is None:
            raise ValueError(
                "dataset='folder' needs data_root (a folder with train/, val/, test/ class folders)"
            )
        out = {}
        for name in which:
            sub = Path(cfg.data_root) / name
            if not sub.is_dir():
                raise FileNotFoundError(
                    f"{sub} not found: data_root must hold train/, val/ and test/ class folders"
                )
            data, _ = load_image_folder(sub, size=cfg.image_size, max_per_class=cfg.max_per_class)
            out[name] = (data.x, data.y)
        return out
    raise ValueError(f"unknown dataset {cfg.dataset!r} (expected 'shapes' or 'folder')")


def sample_episode(by_class: list[np.ndarray], n_way: int, shot: int, query: int, rng: np.random.Generator):
    """Indices (support, query) and episode labels for one n_way-shot episode."""
    if len(by_class) < n_way:
        raise ValueError(f"{n_way}-way episodes need >= {n_way} classes, the split has {len(by_class)}")
    classes = rng.choice(len(by_class), n_way, replace=False)
    s_idx, q_idx = [], []
    for c in classes:
        if len(by_class[c]) < shot + query:
            raise ValueError(
                f"class has {len(by_class[c])} images, an episode needs shot + query = {shot + query}"
            )
        pick = rng.choice(by_class[c], shot + query, replace=False)
        s_idx.append(pick[:shot])
        q_idx.append(pick[shot:])
    ys = np.repeat(np.arange(n_way), shot)
    yq = np.repeat(np.arange(n_way), query)
    return np.concatenate(s_idx), ys, np.concatenate(q_idx), yq


def _by_class(y: torch.Tensor) -> list[np.ndarray]:
    y = y.numpy()
    return [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]


@torch.no_grad()
def embed_all(model: nn.Module, x: torch.Tensor, device, batch: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(x), batch)])


@torch.no_grad()
def evaluate(emb: torch.Tensor, y: torch.Tensor, n_way: int, shot: int, query: int, episodes: int, seed: int):
    """Per-episode accuracies of nearest-prototype classification (fixed episodes for a given seed)."""
    rng = np.random.default_rng(seed)
    by = _by_class(y)
    accs = np.empty(episodes)
    for e in range(episodes):
        s, ys, q, yq = sample_episode(by, n_way, shot, query, rng)
        protos = prototypes(emb[s], torch.from_numpy(ys), n_way)
        # nearest prototype: argmax of -||q - c||^2 / T, the same for any T > 0 and any monotone distance
        pred = proto_logits(emb[q], protos).argmax(1).numpy()
        accs[e] = (pred == yq).mean()
    return accs


def run(cfg: RunConfig, seed: int, device="cpu", log=None, progress=None, test: bool = True) -> dict:
    """Train one arm at one seed; returns metrics (accuracies in %, CI half-widths) and a val curve.

    test=False (the budget pilot): the meta-test split is neither loaded nor evaluated; returns the
    meta-val curve and best only."""
    splits = load_splits(cfg, ("train", "val", "test") if test else ("train", "val"))
    torch.manual_seed(seed)  # identical backbone init for every arm at this seed
    model = conv4(cfg.channels, in_ch=splits["train"][0].shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_tr, y_tr = splits["train"]
    by = _by_class(y_tr)
    rng = np.random.default_rng([seed, 1])  # identical training episodes for every arm at this seed
    best, best_state, curve = -1.0, None, []
    it = range(1, cfg.episodes + 1)
    for ep in progress(it, desc="train") if progress else it:
        model.train()
        s, ys, q, yq = sample_episode(by, cfg.n_way, cfg.train_shot, cfg.n_query, rng)
        z = model(x_tr[np.concatenate([s, q])].to(device))
        ys_t, yq_t = torch.from_numpy(ys).to(device), torch.from_numpy(yq).to(device)
        loss, _ = episode_loss(
            z[: len(s)],
            ys_t,
            z[len(s) :],
            yq_t,
            cfg.n_way,
            triplet=cfg.triplet,
            margin=cfg.margin,
            icnn=cfg.icnn,
            icnn_k=cfg.icnn_k,
            temperature=cfg.temperature,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cfg.lr_step is not None:
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(cfg, ep)
        if ep % cfg.val_every == 0 or ep == cfg.episodes:
            emb = embed_all(model, splits["val"][0], device)
            val = (
                100
                * evaluate(
                    emb, splits["val"][1], cfg.n_way, 1, cfg.test_query, cfg.val_episodes, seed=10_000
                ).mean()
            )
            curve.append({"episode": ep, "loss": loss.item(), "val_1shot": float(val)})
            if log:
                log(step=ep, loss=loss.item(), val_1shot=float(val))
            if val > best:
                best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {"val_1shot_best": float(best)}
    if not test:
        return {**out, "curve": curve}
    model.load_state_dict(best_state)  # the checkpoint of the best meta-val evaluation
    emb = embed_all(model, splits["test"][0], device)
    for shot in (1, 5):
        # test episodes depend only on the seed, so both arms see the same episodes
        accs = 100 * evaluate(
            emb, splits["test"][1], cfg.n_way, shot, cfg.test_query, cfg.test_episodes, seed=20_000 + seed
        )
        out[f"test_{shot}shot"] = float(accs.mean())
        out[f"test_{shot}shot_ci95"] = float(1.96 * accs.std(ddof=1) / np.sqrt(len(accs)))
    out["curve"] = curve
    return out

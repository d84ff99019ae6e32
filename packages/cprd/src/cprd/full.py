"""``--scale full``: a CLIP student distilled from a cross-encoder teacher on COCO / Flickr30K (Karpathy split).

Inputs (config key, or the environment variable in brackets; nothing is downloaded, see
``xentlab.repro.local_data``):

* ``data_root`` [CPRD_DATA_ROOT]: a folder with the Karpathy-split json (``dataset_coco.json`` or
  ``dataset_flickr30k.json``: ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``)
  and the images at ``images/<filepath>/<filename>`` or ``<filepath>/<filename>`` (COCO: ``train2014/``,
  ``val2014/``; Flickr30K: no ``filepath``, all files in ``images/``). Train = ``train`` + ``restval``,
  test = ``test`` (COCO 5k images / 25k captions, Flickr30K 1k / 5k).
* ``clip`` [CPRD_CLIP]: a local transformers CLIP directory (``CLIPModel`` + its image processor and
  tokenizer, ``save_pretrained`` layout), e.g. ``openai/clip-vit-base-patch32`` saved locally: the student.
* ``teacher_scores`` [CPRD_TEACHER_SCORES]: the cross-encoder teacher's ITM scores, precomputed (a
  BLIP / ALBEF ITM head needs its own code, so it runs outside this package). A ``torch.save`` dict:

  - ``batch_scores``: float tensor (n_batches, B, B); entry [b, i, j] is the teacher's ITM logit (for a
    2-way ITM head: logit(match) - logit(no match), i.e. the log-odds of a match, the scale of the cpu
    teacher's single BCE logit on which the validity threshold -6 was set, and the order of the match
    probability) of image i with caption j of fixed batch b. ALBEF's own retrieval re-ranks by the match
    logit ``[:, 1]`` alone (``Retrieval.py::evaluation``); which of the two the paper distils is not stated;
  - ``test_scores``: float tensor (n_test_images, n_test_captions), the teacher's test-gallery scores
    (the teacher experiment's retrieval), best as the teacher's own evaluation computes them (ALBEF:
    ``itm_head(...)[:, 1]`` on the k_test ITC candidates of each query, -100 elsewhere). Pairs the teacher
    did not score may hold a very low value such as -1e4;
  - ``batches`` (optional): the (n_batches, B) pair indices the scores were computed for; checked.

  ``python -m cprd.full export OUT.json`` (with the same variables set) writes the fixed batches
  (image path and caption of every slot) and the test gallery, in the order the tensors must follow.

Training (the cpu pipeline's, with CLIP): the training pairs (every caption of every train image) are
cut once into fixed batches of ``batch_size`` (seeded, as ``experiment.fixed_batches``), so the teacher's
B x B matrix of every batch can be scored once; the batch order per epoch follows the run seed. Each arm
adds the package's distillation term (``experiment.distill_term``, losses unchanged) to ITC; negatives
are the in-batch pairs of other images. Evaluation: R@1 / R@5 / R@10 both ways on the test split.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cprd.experiment import RunConfig, distill_term
from cprd.losses import itc_loss
from xentlab.repro.local_data import MissingLocalData, local_path
from xentlab.repro.spec import ReproError

ENV_DATA = "CPRD_DATA_ROOT"
ENV_CLIP = "CPRD_CLIP"
ENV_TEACHER = "CPRD_TEACHER_SCORES"
LAYOUT = (
    "dataset_<coco|flickr30k>.json (Karpathy split) and the images at images/<filepath>/<filename> "
    "or <filepath>/<filename>"
)
BATCH_SEED = 12345  # the fixed partition of the training pairs (as experiment.fixed_batches)


@dataclass
class Split:
    images: list[Path]  # one per image
    captions: list[str]  # every caption
    img_of_cap: np.ndarray  # caption -> its image index


def load_karpathy(root: Path, dataset: str) -> tuple[Split, Split]:
    """(train = train + restval, test) of the Karpathy json under ``root``."""
    meta = Path(root) / f"dataset_{dataset}.json"
    if not meta.is_file():
        raise MissingLocalData(f"{meta} not found ({ENV_DATA}); expected {LAYOUT}")
    rows = json.loads(meta.read_text())["images"]
    base = Path(root) / "images" if (Path(root) / "images").is_dir() else Path(root)
    out = {"train": Split([], [], []), "test": Split([], [], [])}
    for r in rows:
        split = {"train": "train", "restval": "train", "test": "test"}.get(r["split"])
        if split is None:
            continue
        s = out[split]
        for c in r["sentences"]:
            s.captions.append(c["raw"].strip())
            s.img_of_cap.append(len(s.images))
        s.images.append(base / r.get("filepath", "") / r["filename"])
    for name, s in out.items():
        if not s.images:
            raise ReproError(f"{meta}: no '{name}' images in the Karpathy split")
        if not s.images[0].is_file():
            raise MissingLocalData(f"image {s.images[0]} not found ({ENV_DATA}); expected {LAYOUT}")
        s.img_of_cap = np.asarray(s.img_of_cap)
    return out["train"], out["test"]


def fixed_pair_batches(n_pairs: int, batch_size: int) -> np.ndarray:
    """(n_batches, B) caption (pair) indices: a fixed seeded partition, the last partial batch dropped."""
    if n_pairs < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} training pairs, got {n_pairs}")
    perm = np.random.default_rng(BATCH_SEED).permutation(n_pairs)
    nb = n_pairs // batch_size
    return perm[: nb * batch_size].reshape(nb, batch_size)


def recall_at_k(score: torch.Tensor, img_of_txt: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Image->text: a hit if any of the top-k captions belongs to the image; text->image: the caption's
    own image is in the top k (the standard COCO / Flickr30K protocol). Percentages, plus the mean R@1
    of the two directions and rsum (the six recalls summed)."""
    out = {}
    n_img = score.shape[0]
    owner = img_of_txt[None, :] == torch.arange(n_img)[:, None]  # images x texts
    for name, sc, mt in (("i2t", score, owner), ("t2i", score.T, owner.T)):
        top = sc.topk(min(max(ks), sc.shape[1]), dim=1).indices
        hits = mt.gather(1, top)
        for k in ks:
            out[f"{name}_r{k}"] = 100.0 * hits[:, :k].any(1).float().mean().item()
    out["r1_mean"] = 0.5 * (out["i2t_r1"] + out["t2i_r1"])
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in ks)
    return out


class _Images(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], processor: Any) -> None:
        self.paths, self.processor = paths, processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return self.processor(images=im.convert("RGB"), return_tensors="pt")["pixel_values"][0]


def _features(out: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (older transformers) or an output with ``pooler_output``."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _settings(cfg: dict) -> tuple[Path, Path, Path]:
    root = local_path(cfg, "data_root", ENV_DATA, needs=f"the folder holding {LAYOUT}")
    clip = local_path(cfg, "clip", ENV_CLIP, needs="a local transformers CLIP directory (save_pretrained)")
    teacher = local_path(
        cfg, "teacher_scores", ENV_TEACHER, needs="the teacher's ITM score file (packages/cprd/README.md)"
    )
    return root, clip, teacher


# ALBEF's retrieval fine-tuning schedule, the recipe the full student follows (the paper's is not known):
# configs/Retrieval_{coco,flickr}.yaml (cosine, epochs 5 / 10, min_lr 1e-6, warmup_lr = lr, warmup_epochs 1)
# driven by Retrieval.py, through the timm CosineLRScheduler that ALBEF's scheduler/ copies (t_initial =
# epochs, warmup_t = warmup_epochs, cycle_limit 1, t in epochs).
ALBEF_EPOCHS = {"coco": 5, "flickr30k": 10}
ALBEF_WARMUP_ITERS = 100  # Retrieval.py::train: step_size 100, warmup_iterations = warmup_epochs * step_size


def albef_lr(epoch: int, it: int, *, epochs: int, lr: float, min_lr: float) -> float:
    """The learning rate of iteration ``it`` (0-based) of epoch ``epoch`` under ALBEF's schedule.

    At scheduler time t timm gives the warm-up value ``warmup_lr + t (lr - warmup_lr) = lr`` for t < 1
    (warmup_lr = lr), ``min_lr + (lr - min_lr) (1 + cos(pi t / epochs)) / 2`` for 1 <= t < epochs and
    ``min_lr`` from t = epochs on (one cycle). Retrieval.py sets t = i // 100 after iterations i = 0 and
    100 of epoch 0 and t = e + 2 after epoch e, so iterations 0-100 of epoch 0 run at t = 0, the rest of
    epoch 0 at t = 1, epoch e >= 1 at t = e + 1 (the last epoch at min_lr).
    """
    if epoch < 0 or it < 0 or epochs < 1:
        raise ValueError(f"albef_lr: need epoch, it >= 0 and epochs >= 1, got {epoch}, {it}, {epochs}")
    t = (0 if it <= ALBEF_WARMUP_ITERS else 1) if epoch == 0 else epoch + 1
    if t < 1:
        return lr
    if t >= epochs:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t / epochs))


def load_teacher(path: Path, batches: np.ndarray, n_test_img: int, n_test_txt: int) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    want = {"batch_scores": (*batches.shape, batches.shape[1]), "test_scores": (n_test_img, n_test_txt)}
    for key, shape in want.items():
        if key not in blob or tuple(blob[key].shape) != shape:
            got = tuple(blob[key].shape) if key in blob else "missing"
            raise ReproError(f"{path} ({ENV_TEACHER}): {key!r} must have shape {shape}, got {got}")
    if "batches" in blob and not np.array_equal(np.asarray(blob["batches"]), batches):
        raise ReproError(f"{path}: the scores were computed for other batches (batch_size or data differ)")
    return {"batch_scores": blob["batch_scores"].float(), "test_scores": blob["test_scores"].float()}


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """One arm at one seed: the teacher's own retrieval (arm 'teacher') or a CLIP student."""
    root, clip_dir, teacher_path = _settings(cfg)
    train, test = load_karpathy(root, cfg["dataset"])
    batches = fixed_pair_batches(len(train.captions), cfg["batch_size"])
    teacher = load_teacher(teacher_path, batches, len(test.images), len(test.captions))
    if cfg["arm"] == "teacher":
        return recall_at_k(teacher["test_scores"], torch.as_tensor(test.img_of_cap))
    return train_clip_student(cfg, seed, ctx, clip_dir, train, test, batches, teacher["batch_scores"])


def train_clip_student(cfg, seed, ctx, clip_dir, train: Split, test: Split, batches, batch_scores) -> dict:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    device = ctx.device
    rc = RunConfig(arm=cfg["arm"], k=cfg["k"], valid_threshold=cfg["valid_threshold"], kl_temp=cfg["kl_temp"])
    torch.manual_seed(seed)
    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).to(device)
    processor = AutoImageProcessor.from_pretrained(clip_dir, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(clip_dir, local_files_only=True)
    max_len = min(cfg.get("max_text_len", 77), model.config.text_config.max_position_embeddings)
    # ITC temperature as in the cpu arms (learned, clamped to [0.01, 0.5]); init from CLIP's logit scale
    tau0 = cfg.get("tau_init") or float(1.0 / model.logit_scale.detach().exp().clamp(2.0, 100.0))
    log_tau = torch.nn.Parameter(torch.tensor(math.log(tau0), device=device))
    opt = torch.optim.AdamW([*model.parameters(), log_tau], lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    epochs = cfg["epochs"] or ALBEF_EPOCHS[cfg["dataset"]]
    per_epoch = len(batches)
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(  # LambdaLR scales the base lr: pass ALBEF's lr as a factor
        opt,
        lambda s: albef_lr(
            s // per_epoch, s % per_epoch, epochs=epochs, lr=1.0, min_lr=cfg["min_lr"] / cfg["lr"]
        ),
    )
    rng = np.random.default_rng(seed)  # same batch order for every arm at this seed
    order = np.concatenate([rng.permutation(len(batches)) for _ in range(epochs)])
    images = _Images([train.images[i] for i in train.img_of_cap], processor)  # indexed by pair
    loader = torch.utils.data.DataLoader(
        images, batch_sampler=[batches[b].tolist() for b in order], num_workers=cfg.get("num_workers", 0)
    )
    amp = device.type == "cuda" and cfg.get("bf16", True)
    curve, valid_seen = [], []
    model.train()
    for step, (b, pixels) in enumerate(zip(order, loader)):
        idx = batches[b]
        text = tok([train.captions[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                   return_tensors="pt").to(device)  # fmt: skip
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            v = _features(model.get_image_features(pixel_values=pixels.to(device)))
            w = _features(model.get_text_features(**text))
        s = F.normalize(v.float(), dim=-1) @ F.normalize(w.float(), dim=-1).T
        tau = log_tau.exp().clamp(0.01, 0.5)
        loss = itc_loss(s, tau)
        if rc.arm != "itc":
            img = torch.as_tensor(train.img_of_cap[idx], device=device)
            negatives = img[:, None] != img[None, :]  # another caption of the same image is no negative
            d, stats = distill_term(rc, s, batch_scores[b].to(device), tau, negatives)
            loss = loss + cfg["weight"] * d
            if stats:
                valid_seen.append(stats["valid_per_anchor"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.get("log_every", 50) == 0 or step == steps - 1:
            curve.append([step, loss.item()])
            ctx.log(step=step, loss=loss.item(), tau=tau.item())
    out = recall_at_k(
        encode_gallery(model, processor, tok, test, cfg, device, max_len), torch.as_tensor(test.img_of_cap)
    )
    out["final_tau"] = log_tau.detach().exp().clamp(0.01, 0.5).item()
    if valid_seen:
        out["valid_negatives_per_anchor"] = float(np.mean(valid_seen))
    out["loss_curve"] = curve
    return out


@torch.no_grad()
def encode_gallery(model, processor, tok, test: Split, cfg: dict, device, max_len: int) -> torch.Tensor:
    """Cosine similarities, test images x test captions."""
    model.eval()
    bs = cfg.get("eval_batch", 256)
    loader = torch.utils.data.DataLoader(
        _Images(test.images, processor), batch_size=bs, num_workers=cfg.get("num_workers", 0)
    )
    v = torch.cat([F.normalize(_features(model.get_image_features(pixel_values=x.to(device))).float(), dim=-1).cpu()
                   for x in loader])  # fmt: skip
    w = []
    for s in range(0, len(test.captions), bs):
        t = tok(
            test.captions[s : s + bs], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        w.append(F.normalize(_features(model.get_text_features(**t.to(device))).float(), dim=-1).cpu())
    return v @ torch.cat(w).T


def export_batches(cfg: dict, out: Path) -> Path:
    """The json the teacher's scoring script reads: every fixed batch's (image, caption) slots and the
    test gallery, in the order ``batch_scores`` / ``test_scores`` must follow."""
    root = local_path(cfg, "data_root", ENV_DATA, needs=f"the folder holding {LAYOUT}")
    train, test = load_karpathy(root, cfg["dataset"])
    batches = fixed_pair_batches(len(train.captions), cfg["batch_size"])
    blob = {
        "dataset": cfg["dataset"],
        "batch_size": cfg["batch_size"],
        "batches": batches.tolist(),
        "batch_slots": [
            [{"image": str(train.images[train.img_of_cap[i]]), "caption": train.captions[i]} for i in b]
            for b in batches
        ],
        "test_images": [str(p) for p in test.images],
        "test_captions": test.captions,
    }
    Path(out).write_text(json.dumps(blob))
    return Path(out)


if __name__ == "__main__":  # python -m cprd.full export OUT.json [coco|flickr30k] [batch_size]
    if len(sys.argv) < 3 or sys.argv[1] != "export":
        raise SystemExit("usage: python -m cprd.full export OUT.json [coco|flickr30k] [batch_size]")
    args = sys.argv[2:]
    path = export_batches(
        {
            "dataset": args[1] if len(args) > 1 else "coco",
            "batch_size": int(args[2]) if len(args) > 2 else 128,
        },
        Path(args[0]),
    )
    print(f"wrote {path}")

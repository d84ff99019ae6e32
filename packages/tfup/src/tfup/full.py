"""``--scale full``: TFUP / TFUP-T with a local CLIP ViT-B/16 on one target domain (an image folder).

Inputs (config key, or the environment variable in brackets; nothing is downloaded, see
``xentlab.repro.local_data``):

* ``clip`` [TFUP_CLIP]: a local transformers CLIP directory (``CLIPModel`` + image processor + tokenizer,
  ``save_pretrained`` layout), e.g. ``openai/clip-vit-base-patch16`` saved locally (the paper's ViT-B/16).
* ``target`` [TFUP_TARGET]: one target domain, ``<root>/<domain>/<class>/*.jpg`` (Office-Home, Office-31,
  DomainNet, VisDA-17 ``validation/``); the class names are the sorted class folders (as ``read_data.py``).
* ``dataset`` [TFUP_DATASET]: ``office_home`` | ``office31`` | ``visda17`` | ``domainnet``: selects the
  official per-dataset settings (``configs/*.yaml``, ``DATASETS`` below).
* ``prompts`` [TFUP_PROMPTS] (optional): the GPT-3.5 prompt json the official repo ships
  (``gpt3_prompts/prompts/gpt-3.5-turbo-instruct_<dataset>.json``, ``{classname: [prompts]}``); when unset,
  and always for VisDA-17 (as ``get_clip_weights``), the single template ``"a photo of a {}."``.

The unlabelled pool is every image of the domain, and accuracy is measured on the same pool
(transductive, as the official code for Office-Home / Office-31 / VisDA-17). The arms, TFUP and its
ablations reuse ``tfup.method`` unchanged; TFUP-T follows ``main.py`` ``TFUP_T`` (the same loop as
``experiment.train_tfup_t`` with images read from disk) and is reported at its LAST epoch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tfup.experiment import confidence_cache, random_cache
from tfup.method import (
    ImageAdapter,
    TextAdapter,
    cache_shots,
    cosine_lr,
    loader_batches,
    marginal_loss,
    n_loader_batches,
    select_cache,
    tfup_logits,
    zero_shot_pred,
)
from xentlab.repro.local_data import MissingLocalData, local_path
from xentlab.repro.spec import ReproError

ENV_CLIP, ENV_TARGET, ENV_DATASET, ENV_PROMPTS = "TFUP_CLIP", "TFUP_TARGET", "TFUP_DATASET", "TFUP_PROMPTS"
LAYOUT = "<root>/<domain>/<class>/*.jpg (one class folder per class)"
TEMPLATE = "a photo of a {}."  # utils.py CUSTOM_TEMPLATES (every dataset)
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}

# configs/*.yaml: OPTIM.LR and TRAINER.TFUP.training_proportion differ per dataset (alpha 0.3, beta 1,
# ratio_beta 0.5, ratio_alpha 0.2, cache_proportion 0.3, 30 epochs, 5 warm-up, batch 256 everywhere);
# main.py sets training_proportion 0.75 for the Office-31 'amazon' domain; VisDA-17 uses no GPT prompts.
DATASETS = {
    "office_home": dict(lr=0.012, training_proportion=0.75, gpt_prompts=True, lower=True),
    "office31": dict(lr=0.05, training_proportion=0.5, gpt_prompts=True, lower=True),
    "visda17": dict(lr=0.012, training_proportion=0.5, gpt_prompts=False, lower=False),
    "domainnet": dict(lr=0.012, training_proportion=0.75, gpt_prompts=True, lower=False),
}


def settings(cfg: dict, domain: str) -> dict:
    """The official settings of ``cfg['dataset']`` (or $TFUP_DATASET); explicit config keys win."""
    name = cfg.get("dataset") or os.environ.get(ENV_DATASET)
    if name not in DATASETS:
        raise MissingLocalData(
            f"--scale full needs 'dataset': set {ENV_DATASET} to one of {sorted(DATASETS)} (got {name!r})"
        )
    out = dict(DATASETS[name], dataset=name)
    if name == "office31" and domain == "amazon":
        out["training_proportion"] = 0.75
    return {**out, **{k: cfg[k] for k in ("lr", "training_proportion") if cfg.get(k) is not None}}


def read_domain(folder: Path, lower: bool) -> tuple[list[Path], torch.Tensor, list[str]]:
    """(image paths, labels, class names) of ``folder/<class>/*``; names with '_' -> ' ' (main.py)."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths, labels = [], []
    for c, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_EXT)
        paths += files
        labels += [c] * len(files)
    if len(classes) < 2 or not paths:
        raise MissingLocalData(
            f"{folder} ({ENV_TARGET}) holds no class folders with images; expected {LAYOUT}"
        )
    names = [(n.lower() if lower else n).replace("_", " ") for n in classes]
    return paths, torch.tensor(labels), names


def class_prompts(names: list[str], prompt_file: Path | None) -> list[list[str]]:
    """Per class, the GPT-3.5 prompts of the json (looked up by name, then case-insensitively) or the template."""
    if prompt_file is None:
        return [[TEMPLATE.format(n)] for n in names]
    table = json.loads(Path(prompt_file).read_text())
    folded = {k.lower().replace("_", " "): v for k, v in table.items()}
    out, missing = [], []
    for n in names:
        got = table.get(n) or folded.get(n.lower())
        missing += [] if got else [n]
        out.append(list(got or []))
    if missing:
        raise ReproError(
            f"{prompt_file} ({ENV_PROMPTS}) has no prompts for {missing[:5]} ({len(missing)} classes)"
        )
    return out


def _features(out: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (older transformers) or an output with ``pooler_output``."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _size(x: Any, key: str) -> int:
    return int(x[key] if isinstance(x, dict) else getattr(x, key))


class Images(torch.utils.data.Dataset):
    """Test view (the CLIP processor: resize, centre crop, normalise) or, with ``strong``, dassl's training
    view: random resized crop (area in [0.08, 1], aspect in [3/4, 4/3], bicubic) + horizontal flip +
    normalise. Strong views draw from a per-item generator seeded by (seed, epoch, index)."""

    def __init__(self, paths: list[Path], processor: Any, strong: bool = False, seed: int = 0) -> None:
        self.paths, self.processor, self.strong, self.seed, self.epoch = paths, processor, strong, seed, 0
        cs = processor.crop_size
        self.hw = (_size(cs, "height"), _size(cs, "width"))
        self.mean = torch.tensor(processor.image_mean).view(3, 1, 1)
        self.std = torch.tensor(processor.image_std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            im = im.convert("RGB")
            if not self.strong:
                return self.processor(images=im, return_tensors="pt")["pixel_values"][0]
            rng = np.random.default_rng([self.seed, self.epoch, i])
            x0, y0, w, h = _crop_box(*im.size, rng)
            im = im.resize((self.hw[1], self.hw[0]), Image.BICUBIC, box=(x0, y0, x0 + w, y0 + h))
            if rng.random() < 0.5:
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std


def _crop_box(w: int, h: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision ``RandomResizedCrop.get_params``: 10 tries, else the whole image clamped to the ratio range."""
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        ar = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(area * ar))), int(round(math.sqrt(area / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), cw, ch
    cw, ch = (
        (w, int(round(w / ratio[0])))
        if w / h < ratio[0]
        else ((int(round(h * ratio[1])), h) if w / h > ratio[1] else (w, h))
    )
    return (w - cw) // 2, (h - ch) // 2, cw, ch


@torch.no_grad()
def encode_images(model, dataset, idx, cfg: dict, device) -> torch.Tensor:
    """Raw (unnormalised) CLIP image features of ``dataset[idx]``, float32 on ``device``."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, list(map(int, idx))), batch_size=cfg["eval_batch"],
        num_workers=cfg["num_workers"],
    )  # fmt: skip
    return torch.cat([_features(model.get_image_features(pixel_values=x.to(device))).float() for x in loader])


@torch.no_grad()
def class_weights(model, tok, prompts: list[list[str]], device) -> torch.Tensor:
    """C x D: the mean of the raw text features of each class's prompts (``get_clip_weights``)."""
    max_len = model.config.text_config.max_position_embeddings
    out = []
    for p in prompts:
        t = tok(p, padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(device)
        out.append(_features(model.get_text_features(**t)).float().mean(0))
    return torch.stack(out)


def run_full(cfg: dict, seed: int, ctx: Any) -> dict[str, Any]:
    """Every arm on one target domain (the ``experiment.run`` arms, with CLIP and real images)."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    clip_dir = local_path(
        cfg, "clip", ENV_CLIP, needs="a local transformers CLIP directory (save_pretrained)"
    )
    target = local_path(cfg, "target", ENV_TARGET, needs=f"one target domain folder, {LAYOUT}")
    prompt_file = local_path(cfg, "prompts", ENV_PROMPTS, needs="a prompt json", required=False)
    st = settings(cfg, target.name)
    paths, y, names = read_domain(target, st["lower"])
    prompts = class_prompts(names, prompt_file if st["gpt_prompts"] else None)
    device = ctx.device
    torch.manual_seed(seed)
    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).to(device).eval()
    processor = AutoImageProcessor.from_pretrained(clip_dir, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(clip_dir, local_files_only=True)
    test_view = Images(paths, processor)
    feats = encode_images(model, test_view, range(len(paths)), cfg, device)
    w = class_weights(model, tok, prompts, device)
    y = y.to(device)
    c = len(names)

    def score(logits):
        return float((logits.argmax(1) == y).float().mean())

    def tfup_acc(idx, lab, msm=True):
        idx, lab = idx.to(device), lab.to(device)  # the selection helpers build labels on the CPU
        logits = tfup_logits(feats, w, feats[idx], F.one_hot(lab, c).float(), cfg["alpha"], cfg["beta"], msm)
        return score(logits), float((y[idx] == lab).float().mean()), logits

    acc = {"zero_shot": score(feats @ F.normalize(w, dim=-1).t())}
    k = cache_shots(len(paths), c, cfg["cache_proportion"])
    gen = torch.Generator().manual_seed(seed)
    idx, lab = (t.to(device) for t in select_cache(feats, w, k))
    acc["tfup"], acc["cache_label_acc"], logits = tfup_acc(idx, lab)
    acc["tfup_cosine"] = tfup_acc(idx, lab, msm=False)[0]
    zs_pred = zero_shot_pred(feats, w).cpu()
    r_idx, r_lab = random_cache(zs_pred, c, k, gen)
    acc["tfup_random_cache"], acc["random_cache_label_acc"], _ = tfup_acc(r_idx, r_lab)
    acc["tfup_conf_only"], acc["conf_cache_label_acc"], _ = tfup_acc(*confidence_cache(feats, w, k))
    out = {**acc, "cache_shots": k, "n_target": len(paths), "n_classes": c}
    # refined training set (refine_few_shots_without_label, cache=False): TFUP-labelled, no cap on shots
    t_idx, _ = select_cache(feats, w, cache_shots(len(paths), c, st["training_proportion"], hi=None))
    t_lab = logits.argmax(1)[t_idx]
    res = train_tfup_t_full(cfg, st["lr"], model, Images(paths, processor, strong=True, seed=seed), feats, w,
                            feats[idx], F.one_hot(lab, c).float(), t_idx, t_lab, seed, y, ctx)  # fmt: skip
    out.update(tfup_t=float((res["pred"] == y).float().mean()), refine_label_acc=float((y[t_idx] == t_lab).float().mean()),
               tfup_t_curve=res["curve"], conf_frac=res["conf_frac"], settings=st)  # fmt: skip
    return out


def train_tfup_t_full(
    cfg, lr, model, strong, feats, w, keys, values, refine_idx, refine_lab, seed, labels, ctx
):
    """``experiment.train_tfup_t`` with strong views read from disk: warm-up CE on the refined set, then
    confident (> 0.9) weak-view TFUP pseudo-labels + 0.3 marginal loss over the whole pool; cosine schedule
    with T_max = epochs x refine batches, stepped per batch. ``labels`` only logs the per-epoch curve."""
    device = feats.device
    text = TextAdapter(w, cfg["ratio_text"]).to(device)
    image = ImageAdapter(w.shape[1], 4, cfg["ratio_image"]).to(device)
    params = list(text.parameters()) + list(image.parameters())
    opt = torch.optim.AdamW(params, lr=lr, eps=cfg["eps"], weight_decay=cfg["weight_decay"])
    # T_max = MAX_EPOCH * len(refine_loader); dassl's training loaders drop the last partial batch
    t_max = cfg["epochs"] * n_loader_batches(len(refine_idx), cfg["batch"])
    gen = torch.Generator().manual_seed(seed)
    step, curve, conf_frac = 0, [], []

    def run_step(loss):
        nonlocal step
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, lr, t_max)

    def batches(pool: torch.Tensor):
        """(positions into ``pool``, strong-view features of ``pool[positions]``) per batch, shuffled; the last
        partial batch is dropped when ``len(pool) >= batch`` (dassl's training loader, ``loader_batches``)."""
        pos = torch.cat(loader_batches(len(pool), cfg["batch"], gen))
        images = pool.cpu()[pos].tolist()  # a refined-set sample may appear twice (two classes)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(strong, images), batch_size=cfg["batch"],
                                             num_workers=cfg["num_workers"])  # fmt: skip
        for j, x in zip(pos.split(cfg["batch"]), loader):
            with torch.no_grad():
                fs = _features(model.get_image_features(pixel_values=x.to(device))).float()
            yield j.to(device), fs

    for epoch in range(cfg["epochs"]):
        strong.epoch = epoch
        if epoch < cfg["warmup_epochs"]:
            for j, fs in batches(refine_idx):
                run_step(F.cross_entropy(100.0 * image(fs) @ text().t(), refine_lab[j]))
        else:
            n_conf, n_seen = 0, 0
            for b, fs in batches(torch.arange(len(feats))):  # positions = pool indices
                wt = text()
                with torch.no_grad():
                    weak = tfup_logits(image(feats[b]), wt, keys, values, cfg["alpha"], cfg["beta"])
                    conf, pseudo = F.softmax(weak, dim=1).max(1)
                    sel = conf > cfg["conf_threshold"]
                strong_logits = 100.0 * image(fs) @ wt.t()
                ce = (
                    F.cross_entropy(strong_logits[sel], pseudo[sel])
                    if sel.any()
                    else strong_logits.sum() * 0.0
                )
                run_step(ce + cfg["marginal_weight"] * marginal_loss(strong_logits))
                n_conf += int(sel.sum())
                n_seen += len(b)
            conf_frac.append(n_conf / n_seen)
        with torch.no_grad():
            pred = (image(feats) @ text().t()).argmax(1)
        curve.append(float((pred == labels).float().mean()))
        ctx.log(step=epoch, tfup_t_acc=curve[-1])
    return {"pred": pred, "curve": curve, "conf_frac": conf_frac}

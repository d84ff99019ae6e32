"""Data, the cached teacher, the student arms and retrieval metrics for the CPRD reproduction.

Pipeline (one run of ``reproduce.py``):

1. ``load_data``: a train and a test split of ``xentlab.data.captioned_shapes`` (fixed data seeds,
   independent of the run seed). Both are made of contrast groups of ``group_size`` pairs whose
   captions differ by one binding / relation edit. ``load_val`` gives a third split of the same
   size as the test split, used only to choose the teacher budget (``scripts/pilot_teacher.py``).
   The splits come from the shared array cache, whose key now carries the generator's code
   (``xentlab.data.captioned_shapes.code_version()``), so arrays an older generator wrote are never
   read (protocol fix 2 generated them in every process instead, for that reason).
2. ``get_teacher``: the cross-encoder is trained once per (data, teacher) config with ITM on
   positives, in-group hard negatives (both directions) and random negatives, then scores (a) every
   pair inside every fixed training batch and (b) the whole test gallery (and the validation one).
   It is built once by ``xentlab.data.build_once``: trained and scored with one torch thread whatever the
   caller set, so the cached teacher does not depend on ``--threads``. Model, scores and metrics are cached
   under ``xentlab.data.cache_dir("cprd")`` keyed by a hash of the config and of the code (``teacher_code()``),
   so the arms and seeds share one teacher (the run seed changes the students only).
3. ``train_student``: one dual encoder per (arm, seed): same init and same batch order for every arm
   at a seed; ITC plus the arm's distillation term; evaluated on the test gallery.

Training batches are a *fixed* partition of the training groups (``batch_groups`` whole groups each,
shuffled in order per epoch by the seed), so the teacher's B x B score matrix of every batch can be
computed once. Every batch therefore holds each anchor's in-group hard negatives.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cprd import losses as _losses
from cprd import models as _models
from cprd.losses import itc_loss, kl_distill_loss, partial_ranking_loss
from cprd.models import CrossEncoder, DualEncoder
from xentlab.data import captioned_shapes as _captioned_shapes
from xentlab.data.build_once import build_once
from xentlab.data.cache import cache_dir, code_key, source_digest
from xentlab.data.captioned_shapes import CaptionedShapes, CaptionedShapesConfig, load_captioned_shapes

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the teacher cache key (xentlab.data.cache, "The key rule")"""


@functools.lru_cache(maxsize=1)
def teacher_code() -> str:
    """The code part of the teacher cache key: this module (data splits, batches, teacher training and
    scoring, metrics), ``cprd.models`` (``CrossEncoder``), ``cprd.losses`` (``itc_loss``), the data generator
    (``xentlab.data.captioned_shapes.code_version()``) and the numpy / torch versions. It replaces the
    hand-bumped ``"v": 2`` (README, "Teacher determinism")."""
    return code_key(SOURCE_DIGEST, _models.SOURCE_DIGEST, _losses.SOURCE_DIGEST,
                    _captioned_shapes.code_version(), libraries=("numpy", "torch"))  # fmt: skip


ARMS = ("itc", "kl", "listmle", "cprd")


@dataclass(frozen=True)
class RunConfig:
    """Everything one unit needs. Teacher fields (prefix ``t_``) and data fields key the teacher cache."""

    arm: str = "itc"
    """'itc' | 'kl' | 'listmle' | 'cprd' | 'teacher' (the teacher's own metrics)"""
    # data
    train_groups: int = 400
    """training contrast groups (pairs = groups * group_size)"""
    test_groups: int = 50
    """test contrast groups; the whole test split is the retrieval gallery"""
    group_size: int = 4
    """pairs per contrast group (base + hard-negative variants)"""
    image_size: int = 32
    """image side in pixels"""
    n_colours: int = 6
    """palette size"""
    n_shapes: int = 6
    """shape vocabulary size"""
    paraphrase: bool = False
    """captions stated from either object at random (converse relation); off: always the base form"""
    data_seed: int = 0
    """train split seed 2*data_seed+1000, test split 2*data_seed+1001 (fixed across run seeds)"""
    # teacher (cross-encoder)
    t_width: int = 32
    """teacher fusion transformer width"""
    t_layers: int = 1
    """teacher fusion transformer layers"""
    t_steps: int = 200
    """teacher ITM training steps"""
    t_batch: int = 32
    """pairs per teacher step, whole groups (each anchor gives 4 ITM pairs: positive, in-group text
    negative, random text negative, in-group image negative; ITC runs over the batch)"""
    t_lr: float = 3e-3
    """teacher AdamW learning rate (cosine decay)"""
    t_itc: float = 1.0
    """weight of the teacher's auxiliary ITC loss on its unimodal features (ALBEF trains ITC + ITM)"""
    t_seed: int = 0
    """teacher init / sampling seed"""
    # student (dual encoder)
    dim: int = 64
    """embedding size"""
    s_steps: int = 400
    """student training steps"""
    batch_groups: int = 8
    """groups per student batch (batch = batch_groups * group_size pairs)"""
    lr: float = 3e-3
    """student AdamW learning rate (cosine decay)"""
    tau_init: float = 0.07
    """initial ITC temperature (learned, clamped to [0.01, 0.5]; CLIP / ALBEF init)"""
    # distillation
    weight: float = 1.0
    """distillation loss weight lambda: L = L_itc + lambda * L_distill (unverified: 1)"""
    k: int = 8
    """CPRD: hard negatives mined per anchor by the student"""
    valid_threshold: float = -6.0
    """CPRD: a mined negative is valid when its teacher ITM logit is >= this (unverified criterion)"""
    kl_temp: float = 1.0
    """KL arm: teacher temperature on ITM logits"""

    def teacher_key(self) -> str:
        keep = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        keep = {
            k: v
            for k, v in keep.items()
            if k.startswith("t_")
            or k
            in (
                "train_groups",
                "test_groups",
                "group_size",
                "image_size",
                "n_colours",
                "n_shapes",
                "paraphrase",
                "data_seed",
                "batch_groups",
            )  # fmt: skip
        }
        # the code (teacher_code) replaces the hand-bumped "v": 2 of protocol fix 2: teachers trained by
        # other code, or on images of another generator (README, "Teacher determinism"), are never reused
        blob = json.dumps({"cfg": keep, "code": teacher_code()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _split(group_size: int, size: int, n_colours: int, n_shapes: int, paraphrase: bool, n_groups: int,
           seed: int) -> CaptionedShapes:  # fmt: skip
    """One split, from the shared array cache and kept for the life of the process. Protocol fix 2
    generated it in every process (``cache=False``): the cache was keyed by the generator config, not
    its code, and held images from an earlier version of the generator, so a process with a fresh cache
    trained another teacher on the same config (README, "Teacher determinism"). The key now carries
    the generator's code (xentlab.data.cache, "The key rule"), so the cached arrays are the ones the
    current code draws."""
    base = CaptionedShapesConfig(
        group_size=group_size, size=size, n_colours=n_colours, n_shapes=n_shapes, paraphrase=paraphrase
    )
    return load_captioned_shapes(base.replace(n_groups=n_groups), seed=seed)


def _data_fields(cfg: RunConfig) -> tuple:
    return (cfg.group_size, cfg.image_size, cfg.n_colours, cfg.n_shapes, cfg.paraphrase)


def load_data(cfg: RunConfig) -> tuple[CaptionedShapes, CaptionedShapes]:
    """(train, test): seeds 2*data_seed+1000 and 2*data_seed+1001, independent of the run seed."""
    train = _split(*_data_fields(cfg), cfg.train_groups, 2 * cfg.data_seed + 1000)
    test = _split(*_data_fields(cfg), cfg.test_groups, 2 * cfg.data_seed + 1001)
    return train, test


def load_val(cfg: RunConfig) -> CaptionedShapes:
    """The validation split: ``test_groups`` groups from seed 2*data_seed+3001 (no other split of any
    data_seed < 1000 uses it). Only the teacher-budget pilot reads it; no claim does."""
    return _split(*_data_fields(cfg), cfg.test_groups, 2 * cfg.data_seed + 3001)


def data_fingerprint(*splits: CaptionedShapes) -> str:
    """sha1 over the images and tokens of the splits: a cached teacher is reused only on the same data."""
    h = hashlib.sha1()
    for d in splits:
        h.update(d.x.numpy().tobytes())
        h.update(d.tokens.numpy().tobytes())
    return h.hexdigest()


def fixed_batches(cfg: RunConfig, n_groups: int) -> np.ndarray:
    """(n_batches, B) pair indices: a fixed seeded partition of whole groups (pairs of group g are
    g*group_size .. g*group_size + group_size - 1, as the generator orders them)."""
    if n_groups < cfg.batch_groups:
        raise ValueError(f"need at least batch_groups={cfg.batch_groups} groups, got {n_groups}")
    perm = np.random.default_rng(12345).permutation(n_groups)
    nb = n_groups // cfg.batch_groups
    groups = perm[: nb * cfg.batch_groups].reshape(nb, cfg.batch_groups)
    return (groups[:, :, None] * cfg.group_size + np.arange(cfg.group_size)).reshape(nb, -1)


# --------------------------------------------------------------------------- metrics


def retrieval_metrics(
    score: torch.Tensor, img_key: torch.Tensor, txt_key: torch.Tensor, group: torch.Tensor
) -> dict:
    """R@1 / R@5 both ways (a hit = any retrieved item with the query's meaning), and in-group accuracy.

    ``score``: images x texts. Two items with equal canonical meaning are both correct answers.
    ``group_acc``: for image->text, the argmax over the texts of the image's own contrast group is
    the right one (binding / relation discrimination), averaged with the text->image counterpart.
    """
    match = img_key[:, None] == txt_key[None, :]
    out = {}
    for name, sc, mt in (("i2t", score, match), ("t2i", score.T, match.T)):
        top = sc.topk(min(5, sc.shape[1]), dim=1).indices
        hits = mt.gather(1, top)
        out[f"{name}_r1"] = 100.0 * hits[:, 0].float().mean().item()
        out[f"{name}_r5"] = 100.0 * hits.any(1).float().mean().item()
    out["r1_mean"] = 0.5 * (out["i2t_r1"] + out["t2i_r1"])
    out["rsum"] = out["i2t_r1"] + out["i2t_r5"] + out["t2i_r1"] + out["t2i_r5"]
    same = group[:, None] == group[None, :]
    masked = score.masked_fill(~same, float("-inf"))
    acc_i = match.gather(1, masked.argmax(1, keepdim=True)).float().mean()
    acc_t = match.T.gather(1, masked.T.argmax(1, keepdim=True)).float().mean()
    out["group_acc"] = 50.0 * (acc_i + acc_t).item()
    return out


# --------------------------------------------------------------------------- teacher


def _cosine(step: int, total: int) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_teacher(cfg: RunConfig, train: CaptionedShapes, log: Callable | None = None) -> CrossEncoder:
    """ITM training: BCE on positives vs. in-group (hard) and random negatives, both directions."""
    gen = torch.Generator().manual_seed(cfg.t_seed)
    torch.manual_seed(cfg.t_seed)
    model = CrossEncoder(
        len(train.vocab), train.tokens.shape[1], dim=cfg.dim, fusion_width=cfg.t_width, layers=cfg.t_layers
    )
    log_tau = torch.nn.Parameter(torch.tensor(math.log(cfg.tau_init)))
    opt = torch.optim.AdamW([*model.parameters(), log_tau], lr=cfg.t_lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, cfg.t_steps))
    n, gs = len(train), cfg.group_size
    for step in range(cfg.t_steps):
        # whole contrast groups, as in the student's batches: every anchor has in-group hard negatives
        groups = torch.randint(n // gs, (cfg.t_batch // gs,), generator=gen)
        idx = (groups[:, None] * gs + torch.arange(gs)).reshape(-1)
        nb = len(idx)
        p = torch.arange(nb)
        mate = (p // gs) * gs + (
            p % gs + torch.randint(1, gs, (nb,), generator=gen)
        ) % gs  # in-group, != self
        rand = torch.randint(n, (nb,), generator=gen)
        # each image / caption is encoded once, then paired (the fusion is per pair)
        a, it = model.encode_images(train.x[idx])
        txt = torch.cat([idx, rand])
        b, tt, pad = model.encode_texts(train.tokens[txt])
        ki, kt = (
            torch.cat([p, p, p, mate]),
            torch.cat([p, mate, nb + p, p]),
        )  # (i,i) (i,mate) (i,rand) (mate,i)
        logits = model.itm_logits(a[ki], it[ki], b[kt], tt[kt], pad[kt])
        label = (train.key[idx[ki]] == train.key[txt[kt]]).float()  # a random pick may share the meaning
        per = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
        pos = label > 0.5
        loss = per[pos].mean() + per[~pos].mean()  # balance positives and negatives
        if cfg.t_itc > 0:  # ALBEF trains ITC on the towers together with ITM on the fusion
            loss = loss + cfg.t_itc * itc_loss(a @ b[:nb].T, log_tau.exp().clamp(0.01, 0.5))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step % 100 == 0 or step == cfg.t_steps - 1):
            log(step=step, teacher_itm_loss=loss.item())
    return model.eval()


def get_teacher(cfg: RunConfig, log: Callable | None = None) -> dict:
    """The trained teacher, its scores on every fixed training batch and its test (``metrics``) and
    validation (``val_metrics``) retrieval (cached; rebuilt when the data it was trained on differ).

    ``build_once`` trains and scores it with one torch thread (the same teacher whatever ``--threads`` the
    unit runs with: float reductions depend on the thread count, and a teacher trained through the binding
    transition amplifies that; at 2 threads its ITM loss differs in the 3rd decimal after 100 steps)."""
    train, test = load_data(cfg)
    val = load_val(cfg)
    fingerprint = data_fingerprint(train, test, val)
    found: dict = {}

    def valid(path) -> bool:  # a teacher trained on other images (an older generator) is retrained
        blob = torch.load(path, weights_only=False)
        found["blob"] = blob
        return blob.get("data_sha1") == fingerprint

    def build(tmp) -> None:
        model = train_teacher(cfg, train, log)
        batches = fixed_batches(cfg, cfg.train_groups)
        with torch.no_grad():
            batch_scores = torch.stack(
                [
                    model.score_matrix(train.x[torch.from_numpy(b)], train.tokens[torch.from_numpy(b)])
                    for b in batches
                ]
            )
            test_scores = model.score_matrix(test.x, test.tokens)
            val_scores = model.score_matrix(val.x, val.tokens)
        metrics = retrieval_metrics(test_scores, test.key, test.key, test.group)
        val_metrics = retrieval_metrics(val_scores, val.key, val.key, val.group)
        blob = {"state_dict": model.state_dict(), "batches": batches, "batch_scores": batch_scores,
                "test_scores": test_scores, "metrics": metrics, "val_metrics": val_metrics,
                "data_sha1": fingerprint}  # fmt: skip
        buf = io.BytesIO()  # through a buffer: torch.save(path) would put the file's name in the zip
        torch.save(blob, buf)
        tmp.write_bytes(buf.getvalue())
        found.clear()

    path = build_once(cache_dir("cprd") / f"teacher-{cfg.teacher_key()}.pt", build, valid=valid)
    if "blob" in found and found["blob"].get("data_sha1") == fingerprint:
        return found["blob"]  # read once, by the validity check
    return torch.load(path, weights_only=False)


# --------------------------------------------------------------------------- student


def distill_term(cfg: RunConfig, s: torch.Tensor, t: torch.Tensor, tau, negatives: torch.Tensor):
    """The arm's distillation loss, averaged over the two directions (image->text rows, text->image), and
    the ranking arms' statistics (valid negatives per anchor, ...) averaged over the same two directions."""
    terms, per_direction = [], []
    for ss, tt, nn_ in ((s, t, negatives), (s.T, t.T, negatives.T)):
        if cfg.arm == "kl":
            terms.append(kl_distill_loss(ss, tt, tau, teacher_temp=cfg.kl_temp))
        elif cfg.arm == "listmle":
            loss, st = partial_ranking_loss(ss, tt, tau, k=None, valid_threshold=None, negatives=nn_)
            terms.append(loss)
            per_direction.append(st)
        elif cfg.arm == "cprd":
            loss, st = partial_ranking_loss(
                ss, tt, tau, k=cfg.k, valid_threshold=cfg.valid_threshold, negatives=nn_
            )
            terms.append(loss)
            per_direction.append(st)
        else:
            raise ValueError(f"unknown distillation arm {cfg.arm!r}")
    # audit 3: the statistics were the text->image direction's alone (each direction overwrote the last);
    # with K < all the two directions mine different negatives, so the counts differ (README, "Audit 3")
    stats = (
        {k: 0.5 * (per_direction[0][k] + per_direction[1][k]) for k in per_direction[0]}
        if per_direction
        else {}
    )
    return 0.5 * (terms[0] + terms[1]), stats


def train_student(
    cfg: RunConfig, seed: int, teacher: dict, log: Callable | None = None, split: str = "test"
) -> dict:
    """One dual encoder: ITC (+ the arm's distillation term); returns the metrics on ``split`` ('test',
    or 'val' for the teacher-budget pilot) and a loss curve."""
    if cfg.arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {cfg.arm!r}")
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    train, test = load_data(cfg)
    if split == "val":
        test = load_val(cfg)
    torch.manual_seed(seed)  # same init for every arm at this seed
    model = DualEncoder(len(train.vocab), train.tokens.shape[1], dim=cfg.dim)
    log_tau = torch.nn.Parameter(torch.tensor(math.log(cfg.tau_init)))
    opt = torch.optim.AdamW([*model.parameters(), log_tau], lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, cfg.s_steps))
    batches, scores = teacher["batches"], teacher["batch_scores"]
    rng = np.random.default_rng(seed)  # same batch order for every arm at this seed
    order: list[int] = []
    curve, valid_seen = [], []
    for step in range(cfg.s_steps):
        if not order:
            order = list(rng.permutation(len(batches)))
        b = order.pop()
        idx = torch.from_numpy(batches[b])
        v, w = model.encode_image(train.x[idx]), model.encode_text(train.tokens[idx])
        s = v @ w.T
        tau = log_tau.exp().clamp(0.01, 0.5)
        loss = itc_loss(s, tau)
        if cfg.arm != "itc":
            key = train.key[idx]
            negatives = key[:, None] != key[None, :]  # semantic duplicates are not negatives
            d, stats = distill_term(cfg, s, scores[b], tau, negatives)
            loss = loss + cfg.weight * d
            if stats:
                valid_seen.append(stats["valid_per_anchor"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == cfg.s_steps - 1:
            curve.append([step, loss.item()])
            if log is not None:
                log(step=step, loss=loss.item(), tau=tau.item())
    model.eval()
    with torch.no_grad():
        sim = model.encode_image(test.x) @ model.encode_text(test.tokens).T
    out = retrieval_metrics(sim, test.key, test.key, test.group)
    out["final_tau"] = log_tau.detach().exp().clamp(0.01, 0.5).item()
    if valid_seen:
        out["valid_negatives_per_anchor"] = float(np.mean(valid_seen))
    out["loss_curve"] = curve
    return out

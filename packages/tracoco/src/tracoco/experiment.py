"""One (method, seed) unit of reproduce.py: load the data, train, evaluate the last iteration."""

from __future__ import annotations

import time

import numpy as np

from tracoco.data import brats19, left_atrium, synthetic_split
from tracoco.evaluate import evaluate
from tracoco.trainer import TrainConfig, train
from xentlab.repro.local_data import local_path


def load_data(cfg: dict):
    """(labelled, unlabelled, test) sources for a unit config (``cfg["dataset"]`` picks the source)."""
    dataset = cfg["dataset"]
    if dataset == "synthetic":
        return synthetic_split(
            cfg["n_labelled"], cfg["n_unlabelled"], cfg["n_test"], cfg["data_seed"], cfg["volume_spec"]
        )
    # local_path (not os.environ) so that the runner records the resolved root and recomputes a unit
    # whose root moved; the loaders give their own layout errors, hence required/must_exist off
    if dataset == "left_atrium":
        root = local_path(cfg, "data_root", "TRACOCO_LA_ROOT", needs="", required=False, must_exist=False)
        return left_atrium(root, cfg["n_labelled"])
    if dataset == "brats19":
        root = local_path(cfg, "data_root", "TRACOCO_BRATS_ROOT", needs="", required=False, must_exist=False)
        return brats19(root, cfg["n_labelled"])
    raise ValueError(f"unknown dataset {dataset!r}")


def _slice_index(label: np.ndarray) -> int:
    """The axial (last-axis) slice with the most foreground: the one the figure shows."""
    return int(np.argmax(label.reshape(-1, label.shape[-1]).sum(axis=0)))


def run_unit(cfg: dict, seed: int, ctx) -> dict:
    """Train ``cfg["method"]`` with ``seed`` and score the last iteration on the held-out volumes.

    Metrics (network 1, as the paper reports one network): Dice and Jaccard in %, HD95 and ASD in
    voxels; also network 2's and the two-network ensemble's Dice for the semi-supervised methods.
    """
    labelled, unlabelled, test = load_data(cfg)
    tcfg = TrainConfig.from_dict(cfg)
    t0 = time.perf_counter()
    result = train(
        tcfg,
        labelled,
        unlabelled,
        seed=seed,
        device=ctx.device,
        log=lambda **row: ctx.log(**row),
        progress=lambda steps: ctx.progress(steps, desc=cfg["method"], total=len(steps)),
    )
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = evaluate(
        result.nets, test, roi=tcfg.crop, stride=cfg.get("eval_stride"), device=ctx.device, keep_prediction=0
    )
    eval_s = time.perf_counter() - t0
    out: dict = {
        "dice": 100 * scores["m1/dice"],
        "jaccard": 100 * scores["m1/jaccard"],
        "hd95": scores["m1/hd95"],
        "asd": scores["m1/asd"],
        "empty_predictions": scores["m1/empty"],
        "train_s": round(train_s, 1),
        "eval_s": round(eval_s, 1),
    }
    if len(result.nets) == 2:
        out["m2_dice"] = 100 * scores["m2/dice"]
        out["ens_dice"] = 100 * scores["ens/dice"]
    last = result.history[-1]
    for key in ("m1_loss", "m1_cbc", "m1_tc", "m1_pos_frac"):
        if key in last:
            out[f"final_{key[3:]}"] = float(last[key])
    # Artifacts for the figures: the shown slice of test volume 0, and the step log.
    image, label = test[0]
    z = _slice_index(np.asarray(label))
    pred = scores["predictions"]["m1"]
    out["slice"] = {
        "z": z,
        "pred": pred[:, :, z].astype(int).tolist(),
        "image": np.round(np.asarray(image)[:, :, z], 3).tolist() if cfg["method"] == "supervised" else None,
        "truth": np.asarray(label)[:, :, z].astype(int).tolist() if cfg["method"] == "supervised" else None,
    }
    out["history"] = result.history
    return out

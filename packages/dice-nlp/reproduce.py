"""Reproduce 'Dice Loss for Data-imbalanced NLP Tasks' (Li, Sun, Meng, Liang, Wu, Li; ACL 2020) at CPU scale:
the self-adjusting dice loss (DSC) against CE, weighted CE and focal loss on a procedural tagging task with
an O:entity token ratio of about 5 (CoNLL03-like) and about 50 (MRC-like), plus the paper's own negative
result (dice is not for accuracy-oriented tasks) on balanced scikit-learn digits. A fine-tuning regime repeats
CE and both DSCs from an encoder pretrained without labels (masked-token prediction), as the paper fine-tunes BERT.

    uv run --package dice-nlp packages/dice-nlp/reproduce.py              # cpu scale (default)
    uv run --package dice-nlp packages/dice-nlp/reproduce.py --scale smoke
    DICE_NLP_CONLL03=~/data/conll03 DICE_NLP_BERT=~/models/bert-large-cased \\
        uv run --package dice-nlp packages/dice-nlp/reproduce.py --scale full --device cuda
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from dice_nlp.full import run_full
from dice_nlp.losses import cross_entropy, dice_loss
from dice_nlp.pretrain import PretrainConfig, pretrain_encoder
from dice_nlp.tagger import TrainConfig, train_tagger

from xentlab.data import load_digits_split
from xentlab.data.tagging import TaggingConfig, make_tagging, o_entity_ratio
from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, run_cli

PAPER = Paper(
    title="Dice Loss for Data-imbalanced NLP Tasks",
    arxiv="1911.02855",
    package="dice-nlp",
    venue="ACL 2020",
    code="https://github.com/ShannonAI/dice_loss_for_NLP",
)

# ce: cross-entropy; wce: weighted CE with the paper's lg((n - n_t)/n_t + K) weights; focal: gamma = 2;
# dice: dice loss, alpha = 0; dsc: the official DSC (alpha 0.01, smooth 1, squared denominator), per token
# and summed over classes (the official multi-class path); dsc_batch: the same DSC pooled over the batch per
# class, the granularity of the official binary path that the paper's NER (MRC start/end) and MRPC runs use;
# dsc_alt: per-token DSC with alpha = 0.3 (the value the research notes give as tuned; fixed here, not searched).
LOSSES = ["ce", "wce", "focal", "dice", "dsc", "dsc_alt", "dsc_batch"]
LOSS_LABELS = {"ce": "CE", "wce": "weighted CE", "focal": "focal (γ=2)", "dice": "dice (α=0)",
               "dsc": "DSC (α=0.01)",
    "dsc_alt": "DSC (α=0.3)", "dsc_batch": "DSC batch-pooled"}  # fmt: skip


def tagging(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One seed of one imbalance setting: a fresh synthetic world and data from `seed`, one tagger per
    loss, the epoch chosen on validation span-F1, test span-F1 reported."""
    data = make_tagging(TaggingConfig(**cfg["data"]), seed)
    tcfg = TrainConfig(**cfg["train"])
    out: dict = {"o_entity_ratio": o_entity_ratio(data.train)}
    for loss in cfg["losses"]:
        res = train_tagger(data, loss, tcfg, seed, log=ctx.log)
        out[f"test_f1_{loss}"] = res["test_f1"]
        out[f"val_f1_{loss}"] = res["val_f1"]
        out[f"best_epoch_{loss}"] = res["epoch"]
        out[f"val_curve_{loss}"] = res["val_curve"]
    return out


def tagging_finetune(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """The fine-tuning regime: the same data as the from-scratch unit of this seed and setting, an encoder
    pretrained ONCE on the training sentences' tokens by masked-token prediction (label-free, so neutral
    to the compared losses), then one fine-tuning run per loss from that encoder with a fresh tag layer
    and the from-scratch runs' optimiser, budget and best-validation-epoch selection."""
    data = make_tagging(TaggingConfig(**cfg["data"]), seed)
    tcfg = TrainConfig(**cfg["train"])
    pcfg = PretrainConfig(**cfg["pretrain"])
    if (pcfg.emb, pcfg.hidden) != (tcfg.emb, tcfg.hidden) or tcfg.model != "cnn":
        raise ValueError("the pretrained encoder must have the fine-tuned ConvTagger's shape")
    t0 = time.process_time()
    encoder, stats = pretrain_encoder(data, pcfg, seed)
    out: dict = {"o_entity_ratio": o_entity_ratio(data.train), "pretrain_cpu_s": time.process_time() - t0}
    out.update({f"pretrain_{k}": v for k, v in stats.items()})
    for loss in cfg["losses"]:
        res = train_tagger(data, loss, tcfg, seed, log=ctx.log, init_state=encoder)
        out[f"test_f1_{loss}"] = res["test_f1"]
        out[f"val_f1_{loss}"] = res["val_f1"]
        out[f"best_epoch_{loss}"] = res["epoch"]
        out[f"val_curve_{loss}"] = res["val_curve"]
    return out


def digits(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """Balanced 10-class digits, a linear classifier trained full-batch with CE or DSC: accuracy."""
    data = load_digits_split(seed)
    out: dict = {}
    for loss in ("ce", "dsc"):
        torch.manual_seed(seed)
        model = torch.nn.Linear(data.num_features, data.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        for _ in range(cfg["steps"]):
            z = model(data.x_train)
            if loss == "ce":
                obj = cross_entropy(z, data.y_train)
            else:
                obj = dice_loss(z, data.y_train, alpha=cfg["dice_alpha"], smooth=cfg["dice_smooth"])
            opt.zero_grad()
            obj.backward()
            opt.step()
        with torch.no_grad():
            out[f"acc_{loss}"] = (model(data.x_test).argmax(-1) == data.y_test).float().mean().item()
    return out


def full_conll03(cfg: dict, seed: int, ctx: RunContext) -> dict:
    return run_full(cfg, seed, ctx)


# The synthetic task (xentlab.data.tagging): 3 entity types, a small vocabulary so that rare lexicon words
# are seen often enough in a CPU budget, 5% span label noise. The two settings differ only in the O:entity
# knob and the number of training sentences (1:50 needs more sentences for a usable number of entities:
# ~2,500 sentences give ~600 entity spans, 1,000 sentences at 1:5 give ~1,600).
DATA = {
    "filler_vocab": 150,
    "lexicon_per_type": 15,
    "n_ambiguous": 15,
    "n_shared": 6,
    "n_val": 400,
    "n_test": 1000,
}
# Same optimiser and budget for every loss (Adam lr 5e-3, batch 64, 12 epochs, clip 1.0); the only choice made
# on data is the epoch, by validation span-F1. The dice hyperparameters are the official scripts' values.
TRAIN = {"model": "cnn", "emb": 48, "hidden": 32, "epochs": 12, "batch_size": 64, "lr": 5e-3,
         "dice_alpha": 0.01, "dice_alpha_alt": 0.3, "dice_smooth": 1.0, "dice_square": True, "focal_gamma": 2.0,
         "wce_k": 1.0}  # fmt: skip
SMOKE = {"data": {**DATA, "n_train": 60, "n_val": 30, "n_test": 30}, "train": {**TRAIN, "epochs": 1}}


def _tagging_configs(ratio: float, n_train: int) -> dict:
    return {
        "smoke": {**SMOKE, "data": {**SMOKE["data"], "o_per_entity": ratio}, "losses": LOSSES},
        "cpu": {
            "data": {**DATA, "o_per_entity": ratio, "n_train": n_train},
            "train": TRAIN,
            "losses": LOSSES,
        },
        "full": None,
    }


# The fine-tuning regime (added after the first committed run; fixed before its results were seen): the paper
# fine-tunes BERT, so its losses start from informative features. Here the same ConvTagger encoder is first
# pretrained without labels by BERT-style masked-token prediction on the training sentences (15% of tokens,
# 80/10/10 [MASK]/random/kept; 1,000 Adam steps at the tagging lr, about 17 CPU-s per unit, measured once; the
# step count was not chosen on any F1), then fine-tuned with CE, the official per-token DSC (alpha 0.01) and
# the batch-pooled DSC with exactly TRAIN (same lr, 12 epochs, best-validation epoch). Both settings.
FT_LOSSES = ["ce", "dsc", "dsc_batch"]
PRETRAIN = {"steps": 1000, "batch_size": 64, "lr": 5e-3, "grad_clip": 1.0, "mask_prob": 0.15,
            "emb": TRAIN["emb"], "hidden": TRAIN["hidden"]}  # fmt: skip


def _finetune_configs(ratio: float, n_train: int) -> dict:
    smoke_pre = {**PRETRAIN, "steps": 3}
    return {
        "smoke": {**SMOKE, "data": {**SMOKE["data"], "o_per_entity": ratio}, "pretrain": smoke_pre,
                  "losses": FT_LOSSES},
        "cpu": {"data": {**DATA, "o_per_entity": ratio, "n_train": n_train}, "train": TRAIN,
                "pretrain": PRETRAIN, "losses": FT_LOSSES},
        "full": None,
    }  # fmt: skip


# --scale full: scripts/ner_enconll03/bert_dice.sh (batch 36, accumulate 8, lr 3e-5, polydecay, warmup 0.01,
# dropout 0.2, weight decay 0.01, clip 1.0, 10 epochs, max length 256; DICE_SMOOTH 1, DICE_ALPHA 0.01,
# --dice_square; FOCAL_GAMMA 2 as the dice script sets it; the focal script's own run uses gamma 3).
FULL = {
    "data_root": None, "model": None, "losses": LOSSES, "max_length": 256, "batch_size": 36, "accumulate": 8,
    "eval_batch_size": 64, "lr": 3e-5, "warmup": 0.01, "dropout": 0.2, "weight_decay": 0.01, "grad_clip": 1.0,
    "epochs": 10, "dice_alpha": 0.01, "dice_smooth": 1.0, "dice_square": True, "focal_gamma": 2.0, "wce_k": 1.0,
}  # fmt: skip

# version "2" (fidelity audit, written before its rerun): the best-dev epoch keeps the LAST of tied dev F1s
# (official find_best_checkpoint_on_dev: `current_f1 >= best_f1_on_dev`; version 1 kept the first), and the
# weighted CE divides by the token count N as paper Eq. 2 does (version 1: torch's sum of the weights). Both
# change what every tagging unit computes, so all four tagging experiments rerun; digits is unchanged.
TAGGING_VERSION = "2"
EXPERIMENTS = [
    Experiment(
        "conll_like",
        tagging,
        _tagging_configs(5.0, 1000),
        description="synthetic tagging, O:entity ~ 5",
        version=TAGGING_VERSION,
    ),
    Experiment(
        "mrc_like",
        tagging,
        _tagging_configs(50.0, 2500),
        description="synthetic tagging, O:entity ~ 50",
        version=TAGGING_VERSION,
    ),
    # the fine-tuning regime (added in the first protocol fix)
    Experiment(
        "conll_like_ft",
        tagging_finetune,
        _finetune_configs(5.0, 1000),
        description="synthetic tagging, O:entity ~ 5, fine-tuned from a masked-token-pretrained encoder",
        version=TAGGING_VERSION,
    ),
    Experiment(
        "mrc_like_ft",
        tagging_finetune,
        _finetune_configs(50.0, 2500),
        description="synthetic tagging, O:entity ~ 50, fine-tuned from a masked-token-pretrained encoder",
        version=TAGGING_VERSION,
    ),
    Experiment(
        "digits",
        digits,
        {
            "smoke": {"lr": 0.05, "steps": 20, "dice_alpha": 0.01, "dice_smooth": 1.0},
            "cpu": {"lr": 0.05, "steps": 300, "dice_alpha": 0.01, "dice_smooth": 1.0},
            "full": None,
        },
        description="balanced 10-class digits (accuracy)",
    ),  # fmt: skip
    Experiment("conll03", full_conll03, {"full": FULL}, description="CoNLL03 NER, local BERT checkpoint"),
]


def _gap(a: str, b: str, exp: str):
    return lambda m: m[f"{exp}/test_f1_{a}"] - m[f"{exp}/test_f1_{b}"]


def _gain_shift(method: str, suffix: str = ""):
    # (method - CE) at 1:50 minus (method - CE) at 1:5: positive when the gain grows with the imbalance
    hi, lo = f"mrc_like{suffix}", f"conll_like{suffix}"
    return lambda m: (
        (m[f"{hi}/test_f1_{method}"] - m[f"{hi}/test_f1_ce"])
        - (m[f"{lo}/test_f1_{method}"] - m[f"{lo}/test_f1_ce"])
    )


def _pretrain_gain(loss: str, exp: str):
    # fine-tuned minus from-scratch test span-F1 of one loss (same seed, same data)
    return lambda m: m[f"{exp}_ft/test_f1_{loss}"] - m[f"{exp}/test_f1_{loss}"]


SYNTH = ("smoke", "cpu")
DERIVED = [
    *[Derived(f"gap/{m}_minus_{b}_{e}", _gap(m, b, e), scales=SYNTH)
      for m in ("dsc", "dsc_batch") for b in ("ce", "focal") for e in ("conll_like", "mrc_like")],
    *[Derived(f"gap/{m}_gain_1to50_minus_1to5", _gain_shift(m), scales=SYNTH) for m in ("dsc", "dsc_batch")],
    *[Derived(f"gap/ft_{m}_minus_ce_{e}", _gap(m, "ce", f"{e}_ft"), scales=SYNTH)
      for m in ("dsc", "dsc_batch") for e in ("conll_like", "mrc_like")],
    *[Derived(f"gap/ft_{m}_gain_1to50_minus_1to5", _gain_shift(m, "_ft"), scales=SYNTH)
      for m in ("dsc", "dsc_batch")],
    *[Derived(f"gap/pretrain_gain_{m}_{e}", _pretrain_gain(m, e), scales=SYNTH)
      for m in FT_LOSSES for e in ("conll_like", "mrc_like")],
    Derived("gap/digits_dsc_minus_ce", lambda m: m["digits/acc_dsc"] - m["digits/acc_ce"], scales=SYNTH),
    Derived("gap/conll03_dsc_minus_ce", lambda m: m["conll03/test_f1_dsc"] - m["conll03/test_f1_ce"],
            scales=("full",)),
    Derived("gap/conll03_dsc_minus_focal", lambda m: m["conll03/test_f1_dsc"] - m["conll03/test_f1_focal"],
            scales=("full",)),
]  # fmt: skip

# Thresholds fixed before the cpu run (from the research notes): at 1:50 DSC >= CE + 1 F1 point and >= focal;
# the DSC - CE gain is smaller at 1:5 than at 1:50; DSC accuracy <= CE on a balanced task. F1 is in [0, 1],
# so one point is 0.01. The claims are stated for the official per-token DSC and again for the batch-pooled
# DSC (the official binary-path granularity).
CLAIMS = []
for _m, _label in (("dsc", "DSC"), ("dsc_batch", "batch-pooled DSC")):
    CLAIMS += [
        Claim(
            id=f"{_m}-beats-ce-1to50",
            statement=f"{_label} gains >= 1 span-F1 point over CE at O:entity ~ 50",
            paper="DSC above CE/FL/DL on every NER and MRC table (abstract; per-table numbers not re-read here)",
            metric=f"gap/{_m}_minus_ce_mrc_like", check=">= 0.01", scales=SYNTH,
        ),
        Claim(
            id=f"{_m}-ge-focal-1to50",
            statement=f"{_label} span-F1 >= focal loss at O:entity ~ 50",
            paper="official README, CoNLL03 span-F1: focal 93.08 vs dice 93.21; OntoNotes5 91.12 vs 92.01",
            metric=f"gap/{_m}_minus_focal_mrc_like", check=">= 0", scales=SYNTH,
        ),
        Claim(
            id=f"{_m}-gain-grows-with-imbalance",
            statement=f"the {_label} - CE gain is larger at 1:50 than at 1:5",
            paper="imbalance is worse in MRC (neg:pos 50-200) than CoNLL03 NER (5), Table 1; the dice remedy targets it (Sec. 1)",
            metric=f"gap/{_m}_gain_1to50_minus_1to5", check="> 0", scales=SYNTH,
        ),
    ]  # fmt: skip
# The fine-tuning regime (written before its run): the paper's claims are about fine-tuned BERT, so the two
# CE claims above are restated for the fine-tuned taggers with the SAME thresholds (+1 point over CE at 1:50;
# the gain larger at 1:50 than at 1:5), plus DSC >= CE at 1:5, the CoNLL03-like ratio of the paper's NER
# tables, with the ">= 0" threshold of the focal rows. Focal loss is not in the fine-tuning arm (budget), so
# the focal rows are not restated.
for _m, _label in (("dsc", "DSC"), ("dsc_batch", "batch-pooled DSC")):
    CLAIMS += [
        Claim(
            id=f"ft-{_m}-beats-ce-1to50",
            statement=f"fine-tuned from a pretrained encoder, {_label} gains >= 1 span-F1 point over CE at O:entity ~ 50",
            paper="DSC above CE on every NER and MRC table, all fine-tuning BERT (abstract)",
            metric=f"gap/ft_{_m}_minus_ce_mrc_like", check=">= 0.01", scales=SYNTH,
        ),
        Claim(
            id=f"ft-{_m}-ge-ce-1to5",
            statement=f"fine-tuned from a pretrained encoder, {_label} span-F1 >= CE at O:entity ~ 5",
            paper="DSC above CE on CoNLL03 NER (O:entity ~ 5, Table 1), fine-tuning BERT-MRC (abstract, NER tables)",
            metric=f"gap/ft_{_m}_minus_ce_conll_like", check=">= 0", scales=SYNTH,
        ),
        Claim(
            id=f"ft-{_m}-gain-grows-with-imbalance",
            statement=f"fine-tuned from a pretrained encoder, the {_label} - CE gain is larger at 1:50 than at 1:5",
            paper="imbalance is worse in MRC (neg:pos 50-200) than CoNLL03 NER (5), Table 1; the dice remedy targets it (Sec. 1)",
            metric=f"gap/ft_{_m}_gain_1to50_minus_1to5", check="> 0", scales=SYNTH,
        ),
    ]  # fmt: skip
CLAIMS.append(
    Claim(
        id="dsc-not-for-accuracy",
        statement="on a balanced accuracy-oriented task DSC accuracy <= CE",
        paper="Sec. 'Dice loss for accuracy-oriented tasks': on SST-2/SST-5 DSC accuracy is slightly below CE",
        metric="gap/digits_dsc_minus_ce",
        check="<= 0",
        scales=SYNTH,
    )
)
CLAIMS.append(
    Claim(
        id="conll03-dsc-beats-focal",
        statement="on CoNLL03, DSC span-F1 >= focal loss",
        paper="official README, CoNLL03 span-F1 with BERT-MRC: dice 93.21 vs focal 93.08",
        metric="gap/conll03_dsc_minus_focal",
        check=">= 0",
        scales=("full",),
    )
)


def figures(results, out_dir: Path) -> list[Path]:
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    exps = [e for e in ("conll_like", "mrc_like") if e in results.per_seed]
    if not exps:
        return []
    titles = {"conll_like": "O:entity ≈ 5 (CoNLL-like)", "mrc_like": "O:entity ≈ 50 (MRC-like)"}
    fig, axes = plt.subplots(1, len(exps), figsize=(6 * len(exps), 4), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        for i, loss in enumerate(LOSSES):
            vals = [100 * u["metrics"][f"test_f1_{loss}"] for u in results.per_seed[exp].values()]
            ax.bar(i, sum(vals) / len(vals), color=f"C{i}", alpha=0.6)
            ax.scatter([i] * len(vals), vals, color="k", s=12, zorder=3)
        ax.set_xticks(range(len(LOSSES)), [LOSS_LABELS[m] for m in LOSSES], rotation=30, ha="right")
        ax.set_ylabel("test span-F1 (%)")
        ax.set_title(f"{titles[exp]}: mean (bar), seeds (dots)")
    paths = [save_figure(fig, out_dir / "span_f1.png")]
    fig, axes = plt.subplots(1, len(exps), figsize=(6 * len(exps), 4), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        for i, loss in enumerate(LOSSES):
            for j, u in enumerate(results.per_seed[exp].values()):
                curve = [100 * v for v in u["artifacts"][f"val_curve_{loss}"]]
                ax.plot(range(1, len(curve) + 1), curve, color=f"C{i}", alpha=0.7,
                        label=LOSS_LABELS[loss] if j == 0 else None)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation span-F1 (%)")
        ax.set_title(titles[exp])
        ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "val_curves.png"))
    ft = [e for e in exps if f"{e}_ft" in results.per_seed]
    if ft:
        paths.append(_finetune_figure(results, ft, titles, out_dir))
    return paths


def _finetune_figure(results, exps: list[str], titles: dict, out_dir: Path) -> Path:
    """Top: test span-F1 from scratch vs fine-tuned from the pretrained encoder (mean bars, seed dots);
    bottom: the fine-tuned runs' validation curves."""
    from xentlab.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(2, len(exps), figsize=(6 * len(exps), 8), squeeze=False)
    for col, exp in enumerate(exps):
        ax = axes[0][col]
        for i, loss in enumerate(FT_LOSSES):
            for j, (arm, label) in enumerate(((exp, "scratch"), (f"{exp}_ft", "fine-tuned"))):
                vals = [100 * u["metrics"][f"test_f1_{loss}"] for u in results.per_seed[arm].values()]
                x = 3 * i + j
                ax.bar(x, sum(vals) / len(vals), color=f"C{j}", alpha=0.6, label=label if i == 0 else None)
                ax.scatter([x] * len(vals), vals, color="k", s=12, zorder=3)
        ax.set_xticks([3 * i + 0.5 for i in range(len(FT_LOSSES))], [LOSS_LABELS[m] for m in FT_LOSSES])
        ax.set_ylabel("test span-F1 (%)")
        ax.set_title(f"{titles[exp]}: scratch vs fine-tuned")
        ax.legend(fontsize=8)
        ax = axes[1][col]
        for i, loss in enumerate(FT_LOSSES):
            for j, u in enumerate(results.per_seed[f"{exp}_ft"].values()):
                curve = [100 * v for v in u["artifacts"][f"val_curve_{loss}"]]
                ax.plot(range(1, len(curve) + 1), curve, color=f"C{i}", alpha=0.7,
                        label=LOSS_LABELS[loss] if j == 0 else None)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation span-F1 (%)")
        ax.set_title(f"{titles[exp]}, fine-tuned")
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "finetune.png")


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )

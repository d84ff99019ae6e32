"""The whole reproduce.py at smoke scale, and the cpu configs against the official hyperparameters."""

from pathlib import Path

from xentlab.testing import load_reproduce, run_smoke

REPRODUCE = Path(__file__).parents[1] / "reproduce.py"


def test_official_dice_hyperparameters_in_configs():
    mod = load_reproduce(REPRODUCE)
    exps = {e.name: e for e in mod.EXPERIMENTS}
    for name in ("conll_like", "mrc_like"):
        train = exps[name].config("cpu")["train"]
        # scripts/*/bert_*_dice.sh: DICE_SMOOTH=1, DICE_ALPHA=0.01, --dice_square; FOCAL_GAMMA=2
        assert (train["dice_smooth"], train["dice_alpha"], train["dice_square"], train["focal_gamma"]) == (
            1.0,
            0.01,
            True,
            2.0,
        )
        assert exps[name].config("cpu")["losses"] == [
            "ce",
            "wce",
            "focal",
            "dice",
            "dsc",
            "dsc_alt",
            "dsc_batch",
        ]
    for name in ("conll_like", "mrc_like"):  # the fine-tuning arm: same data and training, a pretrained start
        scratch, ft = exps[name].config("cpu"), exps[f"{name}_ft"].config("cpu")
        assert (ft["data"], ft["train"]) == (scratch["data"], scratch["train"])
        assert ft["losses"] == ["ce", "dsc", "dsc_batch"]
        assert (ft["pretrain"]["emb"], ft["pretrain"]["hidden"]) == (
            scratch["train"]["emb"],
            scratch["train"]["hidden"],
        )
    assert exps["conll_like"].config("cpu")["data"]["o_per_entity"] == 5.0
    assert exps["mrc_like"].config("cpu")["data"]["o_per_entity"] == 50.0
    full = exps["conll03"].config("full")
    assert (full["lr"], full["batch_size"], full["accumulate"], full["epochs"], full["dropout"]) == (
        3e-5,
        36,
        8,
        10,
        0.2,
    )


def test_smoke(tmp_path):
    result = run_smoke(REPRODUCE, tmp_path, extra_args=("--workers", "1"))
    assert result["package"] == "dice-nlp"
    assert "mrc_like/test_f1_dsc_batch" in result["metrics"]
    assert "gap/dsc_minus_ce_mrc_like" in result["metrics"]
    assert "gap/ft_dsc_minus_ce_mrc_like" in result["metrics"]
    assert "conll_like_ft/pretrain_mlm_val_acc" in result["metrics"]
    assert {c["id"] for c in result["claims"]} >= {
        "dsc-beats-ce-1to50",
        "dsc-not-for-accuracy",
        "ft-dsc-beats-ce-1to50",
    }

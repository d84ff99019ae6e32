"""Reproduce "A Probabilistic Perspective on Unlearning and Alignment for Large Language Models"
(Scholten, Günnemann, Schwinn; ICLR 2025; arXiv 2410.03523) at CPU scale.

    uv run python packages/prob-unlearn/reproduce.py [--scale smoke|cpu|full] [--seeds 0 1 2]

A 1.2M-parameter Llama learns every fact of 40 invented authors; the 4 forget authors are then
unlearned by GA, GD and NPO (official losses), each with and without the entropy-optimisation (EO)
regulariser, for one fixed step budget. Every model is evaluated greedily and by sampling n = 128
answers per forget question (top_p 0.9, temperature 1, as the official notebook; top_k 50, the
transformers default that the official sampling.py inherits, since version 3), with the paper's
high-probability bounds on the ROUGE-L leakage distribution (M_mu, M_sigma, ED score) and on the
probability that an answer discloses the fact (M_bin), all at alpha = 0.01. ``--scale full`` runs the official TOFU recipe on a local causal LM
(prob_unlearn.full; see the README).
"""

from __future__ import annotations

from pathlib import Path

from prob_unlearn.experiment import run_seed

from xentlab.repro import Claim, Derived, Experiment, Paper, RunContext, difference, run_cli

PAPER = Paper(
    title="A Probabilistic Perspective on Unlearning and Alignment for Large Language Models",
    package="prob-unlearn",
    arxiv="2410.03523",
    code="https://github.com/yascho/probabilistic-unlearning",
    venue="ICLR 2025",
)

BASE_METHODS = ("ga", "gd", "npo")
LABELS = {"ga": "GA", "gd": "GD", "npo": "NPO"}
VARIANTS = [
    {"name": m + suffix, "method": m, "eo": eo, "positions": "answer"}
    for m in BASE_METHODS
    for suffix, eo in (("", False), ("_eo", True))
]

# the official EO (unlearning_trainer.entropy_loss): entropy averaged over every position of the
# padded batch (pad_to tokens), an extra arm at cpu scale in its own experiment ("eo_all") so that
# the units of "unlearn" keep their config (and resume); same fine-tuned model per seed
EO_ALL_VARIANTS = [{"name": m + "_eo_all", "method": m, "eo": True, "positions": "all"} for m in BASE_METHODS]

COMMON = {
    "vocab_size": 2048,
    "model": "llama-1m",
    "finetune_batch": 32,
    "finetune_lr": 3e-3,
    # evaluation: the official notebook's sampling (top_p 0.9, temperature 1.0) and alpha
    "alpha": 0.01,
    "temperature": 1.0,
    "top_p": 0.9,
    # sampling.py passes no top_k, so transformers 4.51.3's GenerationConfig default top_k = 50 is applied
    # before the nucleus cut; xentlab.lm.generate turns top-k off unless given, so it is set here
    # (protocol version 3, README; versions 1-2 sampled without the top-k cut)
    "top_k": 50,
    "gen_rows": 2048,
    # unlearning (official configs: lambda 1, beta 0.05, lambda_f 1, lambda_r -0.25, wd 0.01) with the
    # official trainer's optimizer (AdamW betas 0.9/0.999, linear warm-up over one epoch, then linear
    # decay to 0; grad clip 1.0; prob_unlearn.experiment.unlearning_optimizer, since version 2);
    # lr 1e-4 for 50 steps was fixed on a probe seed (99, not reported) from the *base* methods
    # only, under version 1's optimizer (betas 0.9/0.95, cosine to 0, no warm-up): 3e-4 and 1e-3 turn
    # GA into gibberish on every query (greedy ROUGE-L 0.0, retain 0.0); the same rule re-applied under
    # version 2's optimizer (scripts/select_lr.py, results/lr_selection.json) keeps 1e-4
    "batch_size": 16,
    "lr": 1e-4,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,  # HF Trainer default
    "lambda": 1.0,
    "beta": 0.05,
    "lambda_f": 1.0,
    "lambda_r": -0.25,
    "pad_to": 64,
    "variants": VARIANTS,
}

CONFIGS = {
    "cpu": {
        **COMMON,
        "n_authors": 40,
        "attributes": ["birthplace", "genre", "award", "first_book"],
        "n_retain_eval_authors": 8,
        "eval_templates": [0],
        "finetune_steps": 150,
        "steps": 50,  # ~17 passes over the 48 forget QAs (official: 10 epochs at batch 16 x 4)
        "n_samples": 128,
        "max_new_tokens": 24,
    },
    "smoke": {
        **COMMON,
        "n_authors": 10,
        "attributes": ["birthplace", "genre"],
        "n_retain_eval_authors": 2,
        "eval_templates": [0],
        "finetune_steps": 4,
        "steps": 2,
        "n_samples": 8,
        "max_new_tokens": 8,
        "gen_rows": 64,
    },
}


# --scale full: TOFU + a local causal LM with the official recipe (prob_unlearn.full, README);
# paths from PROB_UNLEARN_TOFU and PROB_UNLEARN_MODEL (optional PROB_UNLEARN_TOKENIZER)
FULL = {
    "tofu": None,  # $PROB_UNLEARN_TOFU: forget01/05/10, retain99/95/90 (+ full) .json(l)
    "model": None,  # $PROB_UNLEARN_MODEL: TOFU fine-tuned Phi-1.5 (or the base model with finetune=True)
    "tokenizer": None,  # $PROB_UNLEARN_TOKENIZER (optional; default: the model directory)
    "split": 10,  # phi-*.yaml: split 10 -> forget10 / retain90
    # the Question/Answer format of the configs, padded to max_length 256
    "question_start_tag": "Question: ",
    "question_end_tag": "\n",
    "answer_tag": "Answer: ",
    "max_length": 256,
    # fine-tune first (finetuning/configs/phi.yaml on TOFU "full"), once, cached for every seed
    "finetune": False,
    "finetuned_dir": None,
    "finetune_cfg": {
        "batch_size": 16,
        "grad_accum": 2,
        "lr": 2e-5,
        "epochs": 5,
        "weight_decay": 0.01,
        "seed": 0,
    },
    # unlearning (phi-{GA,GD,NPO}.yaml): lambda 1, beta 0.05, EO lambda_f 1 / lambda_r -0.25 over all
    # positions of the padded batch; batch 16 x 4, lr 1e-5, 10 epochs, wd 0.01
    "batch_size": 16,
    "grad_accum": 4,
    "lr": 1e-5,
    "epochs": 10,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,  # HF Trainer default
    "lambda": 1.0,
    "beta": 0.05,
    "lambda_f": 1.0,
    "lambda_r": -0.25,
    "amp": "bfloat16",  # the configs train in bf16; float32 master weights here, autocast on CUDA
    "variants": [{**v, "positions": "all"} for v in VARIANTS],
    # evaluation (sampling-demo.ipynb): 128 samples per forget question, top_p 0.9, T 1, alpha 0.01
    "alpha": 0.01,
    "n_samples": 128,
    "top_p": 0.9,
    "temperature": 1.0,
    # sampling.py passes no top_k: transformers 4.51.3's GenerationConfig default top_k = 50 applies
    # (second fidelity audit; the cpu / smoke configs carry the same since version 3)
    "top_k": 50,
    "max_new_tokens": 128,
    "prompt_answer_tag": True,
    "leak_threshold": 0.5,  # M_bin event: a sample's ROUGE-L >= 0.5 (our choice; see README)
    "n_forget_eval": 400,  # all of forget10
    "n_retain_eval": 400,
    "gen_rows": 512,  # sampled sequences per generate call (4 questions x 128)
    "greedy_batch": 64,
}


# the "eo_all" arm: the cpu / smoke configs with only the three all-position EO variants and without
# re-evaluating the original model (that is "unlearn"'s base_* metrics)
CONFIGS_EO_ALL = {
    scale: {**cfg, "variants": EO_ALL_VARIANTS, "eval_base": False} for scale, cfg in CONFIGS.items()
}


def unlearn_fn(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One seed: the original model, then every unlearning variant, each evaluated greedily and by sampling."""
    if ctx.scale == "full":
        from prob_unlearn.full import run_full

        return run_full(cfg, seed, ctx)
    return run_seed(cfg, seed, ctx)


def eo_all_fn(cfg: dict, seed: int, ctx: RunContext) -> dict:
    """One seed of the official all-position EO arm: the same fine-tuned model as "unlearn" (same seed),
    then GA / GD / NPO + EO with the entropy over every padded position."""
    return run_seed(cfg, seed, ctx)


EXPERIMENTS = [
    Experiment(
        "unlearn",
        unlearn_fn,
        {"smoke": CONFIGS["smoke"], "cpu": CONFIGS["cpu"], "full": FULL},
        # version 2 (audit of 2026-11-29): the unlearning optimizer is the official trainer's
        # (AdamW betas 0.9/0.999, linear warm-up + linear decay; was betas 0.9/0.95, cosine, no warm-up);
        # version 3: the sampled evaluation applies the official top_k = 50 (before top_p 0.9)
        version="3",
        description="fine-tune, unlearn (GA/GD/NPO, +-EO), evaluate greedy vs sampled leakage",
    ),
    # at --scale full "unlearn" already runs the official all-position EO, so this arm is cpu/smoke only
    Experiment(
        "eo_all",
        eo_all_fn,
        {"smoke": CONFIGS_EO_ALL["smoke"], "cpu": CONFIGS_EO_ALL["cpu"], "full": None},
        version="3",  # as "unlearn": the official unlearning optimizer (2), top_k 50 sampling (3)
        description="the official EO (entropy over all padded positions) for GA/GD/NPO, same base model",
    ),
]


def _m(m: dict, name: str, metric: str) -> float:
    return m[f"unlearn/{name}_{metric}"]


def _gap(name: str):
    # claim (a): the sampled upper bound on leakage minus the greedy number it would replace;
    # M_mu (ROUGE-L) against greedy ROUGE-L, M_bin (P(fact disclosed)) against the greedy
    # disclosure rate; the claim takes whichever bound is higher ("M_mu or M_bin")
    return lambda m: max(
        _m(m, name, "m_mu") - _m(m, name, "greedy_rouge"), _m(m, name, "m_bin") - _m(m, name, "greedy_leak")
    )


def _u(name: str, metric: str) -> str:
    return f"unlearn/{name}_{metric}"


def _e(name: str, metric: str) -> str:
    return f"eo_all/{name}_eo_all_{metric}"


DERIVED = (
    [Derived(f"a/{m}_bound_minus_greedy", _gap(m)) for m in BASE_METHODS]
    + [
        Derived(f"a/{m}_mu_minus_greedy_rouge", difference(_u(m, "m_mu"), _u(m, "greedy_rouge")))
        for m in BASE_METHODS
    ]
    + [
        Derived(f"a/{m}_bin_minus_greedy_leak", difference(_u(m, "m_bin"), _u(m, "greedy_leak")))
        for m in BASE_METHODS
    ]
    + [
        Derived(f"b/{m}_ed_drop", difference(_u(m, "ed"), _u(m + "_eo", "ed")), scales=("cpu", "full"))
        for m in BASE_METHODS
    ]
    + [
        Derived(
            f"b/{m}_retain_change",
            difference(_u(m + "_eo", "retain_rouge"), _u(m, "retain_rouge")),
            scales=("cpu", "full"),
        )
        for m in BASE_METHODS
    ]
    # the official all-position EO arm against the base method (paired by seed: same fine-tuned model)
    + [
        Derived(f"b/{m}_eo_all_ed_drop", difference(_u(m, "ed"), _e(m, "ed")), scales=("cpu",))
        for m in BASE_METHODS
    ]
    + [
        Derived(
            f"b/{m}_eo_all_retain_change",
            difference(_e(m, "retain_rouge"), _u(m, "retain_rouge")),
            scales=("cpu",),
        )
        for m in BASE_METHODS
    ]
    # exploratory: ED of EO over answer positions minus ED of the official all-position EO
    + [
        Derived(
            f"exploratory/{m}_eo_answer_minus_eo_all_ed",
            difference(_u(m + "_eo", "ed"), _e(m, "ed")),
            scales=("cpu",),
        )
        for m in BASE_METHODS
    ]
    # exploratory: what sampling finds that greedy decoding does not (share of forget questions
    # with at least one of the n samples disclosing the fact, minus the greedy disclosure rate)
    + [
        Derived(
            f"exploratory/{m}_any_leak_minus_greedy_leak", difference(_u(m, "any_leak"), _u(m, "greedy_leak"))
        )
        for m in BASE_METHODS
    ]
)

CLAIMS = (
    [
        Claim(
            id=f"a-{m}-sampling-exceeds-greedy",
            statement=f"{LABELS[m]}: the upper bound on forget leakage (M_mu or M_bin, alpha=0.01, n=128) "
            "exceeds the greedy value by >= 0.1",
            paper="deterministic evaluations falsely indicate successful unlearning (abstract); notebook: "
            "greedy ROUGE-L 0.42 vs M_mu 0.847 for GA on TOFU forget01",
            metric=f"a/{m}_bound_minus_greedy",
            check=">= 0.1",
            scales=("cpu", "full"),
        )
        for m in BASE_METHODS
    ]
    + [
        Claim(
            id=f"b-{m}-eo-lowers-ed",
            statement=f"{LABELS[m]}+EO has a lower forget ED score than {LABELS[m]}",
            paper="EO + adaptive temperature significantly enhance unlearning in probabilistic settings "
            "(abstract, arXiv v6)",
            metric=f"b/{m}_ed_drop",
            check="> 0",
            scales=("cpu", "full"),
        )
        for m in BASE_METHODS
    ]
    + [
        Claim(
            id=f"b-{m}-eo-keeps-retain",
            statement=f"{LABELS[m]}+EO keeps retain greedy ROUGE-L within 5 points of {LABELS[m]}",
            paper="EO keeps model utility (retain entropy term lambda_r = -0.25; official config)",
            metric=f"b/{m}_retain_change",
            check=">= -0.05",
            scales=("cpu", "full"),
        )
        for m in BASE_METHODS
    ]
    # the same two claims (b) for the official all-position EO arm (cpu scale; at full scale claim (b)
    # above is already about it); thresholds identical to (b), fixed before the rerun
    + [
        Claim(
            id=f"b-{m}-eo-all-lowers-ed",
            statement=f"{LABELS[m]}+EO (official: entropy over all padded positions) has a lower forget ED "
            f"score than {LABELS[m]}",
            paper="EO + adaptive temperature significantly enhance unlearning in probabilistic settings "
            "(abstract, arXiv v6); the official code averages the entropy over all positions",
            metric=f"b/{m}_eo_all_ed_drop",
            check="> 0",
            scales=("cpu",),
        )
        for m in BASE_METHODS
    ]
    + [
        Claim(
            id=f"b-{m}-eo-all-keeps-retain",
            statement=f"{LABELS[m]}+EO (all positions) keeps retain greedy ROUGE-L within 5 points of {LABELS[m]}",
            paper="EO keeps model utility (retain entropy term lambda_r = -0.25; official config)",
            metric=f"b/{m}_eo_all_retain_change",
            check=">= -0.05",
            scales=("cpu",),
        )
        for m in BASE_METHODS
    ]
)


def figures(results, out_dir: Path) -> list[Path]:
    from prob_unlearn.figures import available, bounds_figure, histogram_figure

    names = available(
        results, ["base"] + [v["name"] for v in VARIANTS] + [v["name"] for v in EO_ALL_VARIANTS]
    )
    return [bounds_figure(results, out_dir, names), histogram_figure(results, out_dir, names)]


if __name__ == "__main__":
    run_cli(
        PAPER,
        EXPERIMENTS,
        CLAIMS,
        derived=DERIVED,
        figures=figures,
        default_seeds={"smoke": [0], "cpu": [0, 1, 2], "full": [0]},
        default_workers={"smoke": 1, "cpu": 2, "full": 1},
    )

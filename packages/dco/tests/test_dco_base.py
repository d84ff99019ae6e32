"""The pretrained base model (dco.base): disjoint pretraining data, checkpoint equivalence of the
schedule, deterministic build and the cache."""

from __future__ import annotations

import torch
from dco.base import load_base, pretrain, pretrain_config, pretrain_pairs
from dco.task import build_splits, problem_pairs

from xentlab.data.tokenizer import get_byte_tokenizer
from xentlab.lm.train import LMTrainConfig, lr_lambda

TASK = {"pool_train": 60, "n_train": 24, "n_test": 12, "n_val": 10}
MODEL = {"hidden": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 64, "max_positions": 32}
BASE = {"epochs": 2, "batch_size": 16, "lr": 3e-3, "warmup_steps": 2, "seed": 0}


def test_pretraining_data_is_disjoint_from_finetune_test_and_val():
    pre = set(pretrain_pairs(TASK))
    s = build_splits(TASK)
    assert len(pre) == TASK["pool_train"] - TASK["n_train"]
    for split in (s.train, s.test, s.val):
        assert not pre & set(problem_pairs(split))


def test_warmup_is_a_fixed_step_count():
    """A shorter pretraining is a checkpoint of a longer one: same warm-up steps, then constant lr."""
    mult = []
    for epochs in (10, 80):
        cfg = pretrain_config({**BASE, "epochs": epochs, "warmup_steps": 50}, 32, 121)
        total = epochs * 121
        f = lr_lambda(LMTrainConfig(steps=total, lr=cfg.lr, warmup_frac=cfg.warmup_frac, min_lr_frac=1.0))
        mult.append([f(s) for s in range(0, 1210, 7)])
    assert mult[0] == mult[1]
    assert mult[0][0] == 1 / 50 and mult[0][-1] == 1.0


def test_load_base_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path))
    tok = get_byte_tokenizer()
    a = load_base(MODEL, TASK, BASE, tok)
    files = list((tmp_path / "dco").glob("base_*.pt"))
    assert len(files) == 1
    b = load_base(MODEL, TASK, BASE, tok)  # from the cache
    c = pretrain(MODEL, TASK, BASE, tok)  # rebuilt from scratch: the same weights
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb) and torch.equal(va, vc), k
    from dco.experiment import build_model

    fresh = build_model(MODEL, tok, seed=BASE["seed"])  # the same init: pretraining changed it
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), fresh.state_dict().values()))


def test_shifted_mixture_fraction_parts_and_disjointness():
    """The shifted pretraining mixture: n problems, round(frac * n) of the fine-tuning family taken from
    the unused pool, the rest sums and products only (no a+f*b string), nothing shared with the
    fine-tuning, test or validation splits; the default (no mixture) keeps the old data."""
    task = {"pool_train": 200, "n_train": 24, "n_test": 12, "n_val": 10}
    assert pretrain_pairs(task) == pretrain_pairs(task, None)
    s = build_splits(task)
    held = set().union(*(set(problem_pairs(x)) for x in (s.train, s.test, s.val)))
    for frac in (0.0, 0.1):
        mix = pretrain_pairs(task, {"n": 100, "target_frac": frac})
        assert len(mix) == len(set(mix)) == 100
        composed = [q for q, _ in mix if "+" in q and "*" in q]
        assert len(composed) == round(frac * 100)
        assert set(composed) <= {q for q, _ in pretrain_pairs(task)}
        assert not set(mix) & held
        for q, a in mix:  # every answer is the value of its expression
            assert int(a) == eval(q.rstrip("="))  # noqa: S307 (digits and + * only)
    assert pretrain_pairs(task, {"n": 100, "target_frac": 0.1}) == pretrain_pairs(
        task, {"n": 100, "target_frac": 0.1}
    )
    import pytest

    with pytest.raises(ValueError, match="target_frac"):
        pretrain_pairs(task, {"n": 100, "target_frac": 1.5})
    with pytest.raises(ValueError, match="unused in the pool"):
        pretrain_pairs(task, {"n": 1000, "target_frac": 0.5})


def test_shifted_format_kinds():
    """ "swapped": the unused pool problems, prompt product first, same answers; "wide_addend": a 2-digit
    addend, so no string is a fine-tuning-family string; both disjoint from every split."""
    import pytest

    task = {"pool_train": 200, "n_train": 24, "n_test": 12, "n_val": 10}
    s = build_splits(task)
    held = set().union(*(set(problem_pairs(x)) for x in (s.train, s.test, s.val)))
    unused = pretrain_pairs(task)
    sw = pretrain_pairs(task, {"n": 50, "kind": "swapped"})
    assert [a for _, a in sw] == [a for _, a in unused[:50]]
    q0, p0 = sw[0][0], unused[0][0]  # "7+6*43=" -> "6*43+7="
    a, prod = p0.rstrip("=").split("+")
    assert q0 == f"{prod}+{a}="
    wide = pretrain_pairs(task, {"n": 80, "kind": "wide_addend"})
    assert len(set(wide)) == 80 and all(10 <= int(q.split("+")[0]) <= 99 for q, _ in wide)
    for mix in (sw, wide):
        assert not set(mix) & held
        assert all(int(ans) == eval(q.rstrip("=")) for q, ans in mix)  # noqa: S307
    with pytest.raises(ValueError, match="unknown mixture kind"):
        pretrain_pairs(task, {"n": 10, "kind": "nope"})
    with pytest.raises(ValueError, match="unused in the pool"):
        pretrain_pairs(task, {"n": 500, "kind": "swapped"})

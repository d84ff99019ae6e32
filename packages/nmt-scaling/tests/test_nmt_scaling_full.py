"""--scale full end to end on a tiny parallel corpus the test writes (nothing is downloaded): the BPE is
trained on the training split and cached, the splits are encoded, models of the ladder train and are
scored, the ladder's fits run on their metrics; a missing variable or file is named in the error."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"
EN = {"cat": "katze", "dog": "hund", "bird": "vogel", "horse": "pferd"}
VERB = {"sees": "sieht", "likes": "mag", "finds": "findet"}
ADJ = {"small": "kleine", "old": "alte"}


def _pairs():
    for (a, b), v, adj in itertools.product(itertools.permutations(EN, 2), VERB, ADJ):
        yield f"the {adj} {a} {v} the {b} .", f"die {ADJ[adj]} {EN[a]} {VERB[v]} den {EN[b]} ."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt")
    pairs = list(_pairs())  # 72 pairs
    splits = {"train": pairs[:48], "valid": pairs[48:60], "test": pairs[60:]}
    for split, rows in splits.items():
        (root / f"{split}.en").write_text("\n".join(s for s, _ in rows) + "\n")
        (root / f"{split}.de").write_text("\n".join(t for _, t in rows) + "\n")
    return root


def test_full_ladder_end_to_end(corpus, tmp_path, monkeypatch):
    """reproduce.py --scale full through run_cli: every model of the ladder (11), the fits and claims (the
    figures, which refit every law, are left out for time; they were checked on this fixture by hand)."""
    from xentlab.repro import run_cli

    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    # the parameter bootstrap (100 refits; exercised by the smoke test) takes ~30 s on the fixture's
    # 9 noisy points: replaced by an empty interval here
    monkeypatch.setattr("nmt_scaling.analysis.bootstrap_bivariate",
                        lambda *a, **k: {"p_e_ci95": (math.nan,) * 2, "p_d_ci95": (math.nan,) * 2})  # fmt: skip
    mod = load_reproduce(REPRO)
    exps = [e for e in mod.EXPERIMENTS if e.config("full") is not None]
    for e in exps:
        e.configs["full"] = _tiny(e.config("full"), corpus)
    out = tmp_path / "out"
    result = run_cli(mod.PAPER, exps, mod.CLAIMS, derived=mod.DERIVED, figures=None,
                     default_seeds={"full": [0]}, argv=["--scale", "full", "--out", str(out), "--quiet"],
                     package_dir=REPRO.parent)  # fmt: skip
    m = {k: v["mean"] for k, v in result["metrics"].items()}
    assert len(exps) == 11 and len([k for k in m if k.endswith("/n_enc")]) == 11
    for name in ("e2d6", "e6d6", "e12d12"):
        assert 0 < m[f"{name}/final_loss"] < math.log(m[f"{name}/vocab_size"]) + 1
        assert m[f"{name}/n_train_pairs"] == 48 and m[f"{name}/n_test_pairs"] == 12
        # two validation evaluations (steps 2 and 4); the scored checkpoint is one of them
        assert m[f"{name}/stop_step"] == 4 and m[f"{name}/best_step"] in (2, 4)
    # N_e grows with the encoder depth and N_d with the decoder's; the base is (6, 6)
    assert m["e2d6/n_enc"] < m["e4d6/n_enc"] < m["e6d6/n_enc"] < m["e8d8/n_enc"] < m["e12d12/n_enc"]
    assert m["e6d2/n_dec"] < m["e6d4/n_dec"] < m["e6d6/n_dec"] and m["e6d6/is_base"] == 1.0
    # the cpu scale's fits and claims run on the full-scale metrics; no exact L_inf on real text
    assert (
        math.isfinite(m["bi/r2"]) and math.isfinite(m["bi/err_e12d12"]) and m["bi/l_inf_minus_true"] is None
    )
    assert {c["id"] for c in result["claims"]} == {"joint-fit-r2", "heldout-proportional", "beats-total-n"}
    # the tokenizer and the encoded corpus were built once for the 11 models, keyed by the files
    assert len(list((tmp_path / "cache" / "nmt-scaling" / "tokenizers").glob("bpe-300-*.json"))) == 1
    assert len(list((tmp_path / "cache").glob("nmt-scaling-corpus-*.npz"))) == 1


def _tiny(cfg: dict, corpus: Path) -> dict:
    """A ladder model's full config from reproduce.py, shrunk to the fixture."""
    tiny = dict(data_root=str(corpus), d_model=16, heads=2, enc_ffn=32, dec_ffn=32, vocab_size=300,
                max_steps=4, eval_every=2, warmup_steps=1, batch_tokens=160, eval_tokens=400, valid_sents=8,
                max_len=24, lr=3e-3)  # fmt: skip
    return {**cfg, "full": {**cfg["full"], **tiny}}


def test_full_batches_are_the_seeds_and_respect_the_budget(corpus, tmp_path, monkeypatch):
    from nmt_scaling.full import FullConfig, corpus_files, get_tokenizer, load_splits, token_batches

    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    fc = FullConfig(data_root=str(corpus), vocab_size=300, max_len=24)
    files = corpus_files(fc)
    tk = get_tokenizer(fc, files)
    train = load_splits(fc, files, tk)["train"]
    # the specials are PAD/BOS/EOS of the synthetic task; every sentence ends in EOS
    assert [tk.token_to_id(t) for t in ("<pad>", "<s>", "</s>")] == [0, 1, 2]
    assert all(train.tgt[o - 1] == 2 for o in train.tgt_off[1:])
    b0 = token_batches(train, 100, seed=3, epoch=0)
    assert [x.tolist() for x in b0] == [x.tolist() for x in token_batches(train, 100, seed=3, epoch=0)]
    assert sorted(np.concatenate(b0).tolist()) == list(range(len(train)))  # an epoch covers every pair once
    ls, lt = train.lengths()
    assert all(len(b) * max(ls[b].max(), lt[b].max()) <= 100 for b in b0)
    assert [x.tolist() for x in b0] != [x.tolist() for x in token_batches(train, 100, seed=4, epoch=0)]
    # pairs with a side longer than max_len (EOS included) are dropped and counted
    lines = [(corpus / f"train.{x}").read_text().splitlines() for x in ("en", "de")]
    longest = [max(len(tk.encode(a).ids), len(tk.encode(b).ids)) + 1 for a, b in zip(*lines)]
    cap = max(longest) - 1  # drops the longest training pairs, keeps some of every split
    short = load_splits(FullConfig(data_root=str(corpus), vocab_size=300, max_len=cap), files, tk)["train"]
    too_long = sum(n > cap for n in longest)
    assert 0 < short.dropped == too_long and len(short) == 48 - too_long
    assert max(np.diff(short.src_off).max(), np.diff(short.tgt_off).max()) <= cap


def test_full_names_the_missing_variable_and_files(corpus, tmp_path, monkeypatch):
    from nmt_scaling.full import FullConfig, corpus_files

    monkeypatch.delenv("NMT_SCALING_DATA", raising=False)
    with pytest.raises(MissingLocalData, match="NMT_SCALING_DATA.*train.SRC"):
        corpus_files(FullConfig())
    (tmp_path / "train.en").write_text("a\n")
    monkeypatch.setenv("NMT_SCALING_DATA", str(tmp_path))
    with pytest.raises(MissingLocalData, match=r"lacks train\.de, valid\.en"):
        corpus_files(FullConfig())
    assert corpus_files(FullConfig(data_root=str(corpus)))["test"][1].name == "test.de"

"""--scale full end to end on tiny monolingual files the test writes (a few kilobytes per language,
nothing downloaded): reading, the held-out tail, the BPE and byte tokenizers, the mixture plan, the whole
study of one seed through reproduce.py's unit function; a missing variable or file is named."""

from __future__ import annotations

import gzip
import math
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xentlab.repro.local_data import MissingLocalData
from xentlab.testing.reproduce_module import load_reproduce

REPRO = Path(__file__).parents[1] / "reproduce.py"
FAMILIES = [["Romance", ["fr", "es", "it"]], ["Germanic", ["de", "nl"]], ["Slavic", ["pl"]]]
SYLLABLES = {  # a different syllable inventory per family, shared in part by its languages
    "fr": "le la des ou ai eau ent ion", "es": "el la los ción ar os ue ñ", "it": "il la gli zione are oi",
    "de": "der die das sch ung ei en", "nl": "de het een ij oe sch en", "pl": "się nie prz cz ść ów ą",
}  # fmt: skip


def _text(code: str, n_bytes: int) -> str:
    rng = np.random.default_rng(sum(map(ord, code)))
    syl = SYLLABLES[code].split()
    lines, size = [], 0
    while size < n_bytes:
        line = " ".join("".join(rng.choice(syl, rng.integers(1, 4))) for _ in range(rng.integers(4, 12)))
        lines.append(line + "\n")
        size += len(line.encode()) + 1
    return "".join(lines)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc100")
    for c in SYLLABLES:
        if c == "it":
            with gzip.open(root / "it.txt.gz", "wt", encoding="utf-8") as f:  # compressed files are read too
                f.write(_text(c, 5000))
        else:
            (root / f"{c}.txt").write_text(_text(c, 5000), encoding="utf-8")
    return root


def _cfg(root: Path, **over) -> dict:
    from multilingual_scaling.train import TrainConfig

    full = load_reproduce(REPRO).FULL
    tiny = dict(layers=1, heads=2, tokens=640, batch=4, seq_len=16, lr=1e-2, test_seqs=6)
    return {**full, "data_root": str(root), "families": FAMILIES, "vocab_size": 300, "tokenizer_chars": 3000,
            "max_bytes_per_language": 4000, "test_bytes_per_language": 600,
            "small": [asdict(TrainConfig(hidden=8, **tiny)), asdict(TrainConfig(hidden=16, **tiny))],
            "large": asdict(TrainConfig(hidden=24, **tiny)), "replicas": 2, **over}  # fmt: skip


def _ctx(tmp_path):
    logs = []
    return SimpleNamespace(device=torch.device("cpu"), scale="full", seed=0, unit_dir=tmp_path,
                           log=lambda **k: logs.append(k), progress=lambda it, **k: it, logs=logs)  # fmt: skip


def test_full_study_end_to_end(root, tmp_path, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    mod = load_reproduce(REPRO)
    ctx = _ctx(tmp_path)
    out = mod.study(_cfg(root), 0, ctx)
    # every claim's metric exists and is finite; the families keep the labels A, B, C
    for c in mod.CLAIMS:
        assert math.isfinite(out[c.metric.split("/", 1)[1]]), c.metric
    assert out["family_names"] == {"A": "Romance", "B": "Germanic", "C": "Slavic"}
    assert out["control_languages"] == {"A": ["fr", "es"], "Aprime": ["it"]}
    assert out["s0_n_nonemb"] < out["s1_n_nonemb"] < out["big_n_nonemb"]
    assert abs(sum(out[f"p_pstar_{n}"] for n in "ABC") - 1) < 1e-9
    # natural ratios follow the training text read per family (3, 2, 1 languages of ~equal size)
    assert out["p_natural_A"] > out["p_natural_B"] > out["p_natural_C"]
    # 8 gamma runs, 7 independence/control mixtures x 2 replicas (3 of them the gamma runs, reused), 3 large
    assert len([r for r in ctx.logs if "run" in r]) == 8 + 7 * 2 + 3
    assert len(out["indep_runs"]["ind_M3"]) == 2 and out["s0_M3_L_A"] == out["indep_runs"]["ind_M3"][0]
    # the BPE is cached once, keyed by the files and settings; a rerun reuses it and the arrays
    assert len(list((tmp_path / "cache" / "multilingual-scaling" / "tokenizers").glob("bpe-*.json"))) == 1
    assert len(list((tmp_path / "cache").glob("multilingual-scaling-corpus-*.npz"))) == 1


def test_full_data_pipeline(root, tmp_path, monkeypatch):
    from multilingual_scaling.full import language_files, load_corpus, mixture_windows, read_language

    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    train, test = read_language(root / "de.txt", 4000, 600)
    assert sum(len(x.encode()) for x in train + test) <= 4000 and sum(len(x.encode()) for x in test) >= 600
    assert "".join(train + test) == (root / "de.txt").read_text()[: len("".join(train + test))]
    cfg = _cfg(root, tokenizer="bytes")
    files = language_files(cfg, ["fr", "it", "pl"])
    assert files["it"].name == "it.txt.gz"
    enc, arrays = load_corpus(cfg, files)
    assert enc.vocab_size == 256 and arrays["pl_test"].dtype == np.uint8
    assert bytes(arrays["pl_test"]).decode() == "".join(read_language(root / "pl.txt", 4000, 600)[1])
    fams = [["fr", "it"], ["pl"]]
    plan = mixture_windows(arrays, fams, [0.75, 0.25], 40, 16, seed=1)
    assert (plan[:, 0] == 2).sum() == 10 and set(plan[:, 0][plan[:, 0] < 2]) == {0, 1}  # 30 fr/it, 10 pl
    assert np.array_equal(plan, mixture_windows(arrays, fams, [0.75, 0.25], 40, 16, seed=1))
    with pytest.raises(ValueError, match="'bytes' or 'bpe'"):
        load_corpus({**cfg, "tokenizer": "chars"}, files)


def test_full_names_the_missing_variable_and_files(root, tmp_path, monkeypatch):
    from multilingual_scaling.full import family_table, language_files

    monkeypatch.delenv("MULTILINGUAL_SCALING_DATA", raising=False)
    cfg = _cfg(root, data_root=None)
    with pytest.raises(MissingLocalData, match=r"MULTILINGUAL_SCALING_DATA.*<code>\.txt"):
        language_files(cfg, ["fr"])
    monkeypatch.setenv("MULTILINGUAL_SCALING_DATA", str(root))
    with pytest.raises(MissingLocalData, match=r"lacks ro\.txt"):
        language_files(cfg, ["fr", "ro"])
    assert [t[1] for t in family_table({"families": {"x": ["fr"], "y": ["de"], "z": ["pl"]}})] == [
        "x",
        "y",
        "z",
    ]
    with pytest.raises(ValueError, match="exactly 3 families"):
        family_table({"families": {"a": ["fr"], "b": ["de"]}})
    with pytest.raises(ValueError, match="two families"):
        family_table({"families": {"a": ["fr"], "b": ["de"], "c": ["fr"]}})

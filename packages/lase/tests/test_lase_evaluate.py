import numpy as np
import pytest
from lase.evaluate import evaluate_embeddings, gap_margin, sample_pairs


def test_pair_buckets_mean_what_they_say():
    speaker = np.repeat(np.arange(4), 8)
    language = np.tile(np.repeat(np.arange(4), 2), 4)
    pairs = sample_pairs(speaker, language, 50, np.random.default_rng(0))
    i, j = pairs["within"]
    assert np.all(speaker[i] == speaker[j]) and np.all(language[i] == language[j])
    i, j = pairs["cross"]
    assert np.all(speaker[i] == speaker[j]) and np.all(language[i] != language[j])
    i, j = pairs["floor"]
    assert np.all(speaker[i] != speaker[j]) and np.all(language[i] == language[j])
    # within has only 4 speakers x 4 languages x 1 pair = 16 candidates: all of them, no repeats
    assert len(pairs["within"][0]) == 16 and len(pairs["cross"][0]) == 50
    assert len(set(zip(*pairs["cross"]))) == 50
    with pytest.raises(ValueError, match="floor"):
        sample_pairs(np.zeros(4, int), np.array([0, 0, 1, 1]), 5, np.random.default_rng(0))


def test_gap_margin_point_values_and_ci():
    rng = np.random.default_rng(0)
    within = np.full(200, 0.9)
    cross = np.full(200, 0.7)
    floor = np.full(200, 0.1)
    out = gap_margin(within, cross, floor, rng, n_boot=50)
    assert out["gap"] == pytest.approx(0.2) and out["margin"] == pytest.approx(0.6)
    assert out["gap_lo"] == pytest.approx(0.2) and out["gap_hi"] == pytest.approx(0.2)  # constant buckets
    noisy = gap_margin(rng.normal(0.8, 0.05, 200), rng.normal(0.8, 0.05, 200), floor, rng)
    assert noisy["gap_lo"] < 0 < noisy["gap_hi"]


def _embeddings(language_strength: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    speaker = np.repeat(np.arange(6), 12)
    language = np.tile(np.arange(4), 18)
    spk_dirs, lang_dirs = rng.normal(size=(6, 32)), rng.normal(size=(4, 32))
    emb = spk_dirs[speaker] + language_strength * lang_dirs[language] + 0.3 * rng.normal(size=(72, 32))
    return emb, speaker, language


def test_language_free_embeddings_have_no_gap_and_a_chance_probe():
    emb, spk, lang = _embeddings(0.0)
    out = evaluate_embeddings(
        emb, spk, lang, 4, np.random.default_rng(0), n_pairs=100, n_boot=200, probe_folds=3
    )
    assert out["gap_ci_includes_zero"] and abs(out["gap"]) < 0.05
    assert out["lang_probe_acc"] < 0.45  # chance is 0.25
    assert out["margin"] > 0.5 and out["eer"] < 0.05


def test_language_laden_embeddings_have_a_gap_and_a_good_probe():
    emb, spk, lang = _embeddings(1.0)
    out = evaluate_embeddings(
        emb, spk, lang, 4, np.random.default_rng(0), n_pairs=100, n_boot=200, probe_folds=3
    )
    assert out["gap_ci_above_zero"] and out["gap"] > 0.2
    assert out["lang_probe_acc"] > 0.9

"""The synthetic language families: ciphers, token blocks, exact mixture counts, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from multilingual_scaling.experiment import rel_spread, weighted_normalised_loss, world_config
from multilingual_scaling.families import (
    check_ratios,
    family_ciphers,
    family_source,
    language_cipher,
    make_world,
    mixture_stream,
    sample_family,
)


def test_cipher_is_a_permutation_moving_exactly_k_symbols():
    for seed in range(5):
        perm = language_cipher(16, 0.25, seed)
        assert sorted(perm.tolist()) == list(range(16))
        assert int((perm != np.arange(16)).sum()) == 4  # round(0.25 * 16) symbols, none fixed
    assert np.array_equal(language_cipher(16, 0.0, 0), np.arange(16))


def test_languages_keep_the_family_entropy():
    # a cipher is a bijection: undoing it turns a language back into a stream of the family source, whose
    # mean true-model loss converges to the exact entropy rate (ergodic theorem). Family C has 1 language.
    world = make_world(world_config()["world"])
    fam = world.families[2]
    x = sample_family(fam, 2000, 16, seed=3) - fam.offset
    inv = np.argsort(family_ciphers(fam)[0])
    src = family_source(fam)
    h = src.entropy_rate
    assert -src.log_prob(inv[x]).mean() == pytest.approx(h, rel=0.03)
    # without undoing the cipher the text is NOT the family source: much higher loss under it
    assert -src.log_prob(x).mean() > 1.5 * h


def test_tokens_stay_in_family_blocks_and_counts_are_exact():
    world = make_world(world_config()["world"])
    x, fam = mixture_stream(world, (0.3, 0.6, 0.1), 40, 8, seed=1)
    assert np.bincount(fam, minlength=3).tolist() == [12, 24, 4]
    for i, f in enumerate(world.families):
        rows = x[fam == i]
        assert rows.min() >= f.offset and rows.max() < f.offset + f.block
    assert world.vocab_size == 48


def test_stream_is_deterministic_and_seed_dependent():
    world = make_world(world_config()["world"])
    a, _ = mixture_stream(world, (0.2, 0.45, 0.35), 30, 8, seed=5)
    b, _ = mixture_stream(world, (0.2, 0.45, 0.35), 30, 8, seed=5)
    c, _ = mixture_stream(world, (0.2, 0.45, 0.35), 30, 8, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_control_world_shares_family_a_block():
    ctl = make_world(world_config()["control_world"])
    a, ap = ctl.families[0], ctl.families[2]
    assert ap.offset == a.offset and ap.source == a.source
    assert not np.array_equal(family_ciphers(ap)[0], family_ciphers(a)[0])
    assert ctl.vocab_size == make_world(world_config()["world"]).vocab_size


def test_natural_ratios_follow_language_counts():
    world = make_world(world_config()["world"])
    assert np.allclose(world.natural_ratios(), [3 / 6, 2 / 6, 1 / 6])


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.5, 0.6, -0.1), (0.2, 0.2, 0.2)])
def test_bad_ratios(ratios):
    with pytest.raises(ValueError, match="ratios"):
        check_ratios(ratios, 3)


def test_summaries_hand_values():
    # (3 - 1) / mean(1, 2, 3) = 2 / 2 = 1; sum w L / H = 0.5 * 2 / 1 + 0.5 * 3 / 2 = 1.75
    assert rel_spread([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert weighted_normalised_loss([2.0, 3.0], [1.0, 2.0], [0.5, 0.5]) == pytest.approx(1.75)

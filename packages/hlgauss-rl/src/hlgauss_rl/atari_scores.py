"""Human-normalised Atari scores and their IQM (Agarwal et al. 2021), for `--scale full`."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

# Random and human reference scores (Mnih et al. 2015 / Wang et al. 2016; the table used by rliable,
# Dopamine and cleanrl). Games: the Atari-5 subset of Aitchison et al. (2022), which predicts the
# 57-game median, plus Pong (the CPU smoke test) and the MinAtar originals.
RANDOM_SCORES = {
    "Pong": -20.7,
    "Breakout": 1.7,
    "Asterix": 210.0,
    "Seaquest": 68.4,
    "SpaceInvaders": 148.0,
    "Freeway": 0.0,
    "BattleZone": 2360.0,
    "DoubleDunk": -18.6,
    "NameThisGame": 2292.3,
    "Phoenix": 761.4,
    "Qbert": 163.9,
}
HUMAN_SCORES = {
    "Pong": 14.6,
    "Breakout": 30.5,
    "Asterix": 8503.3,
    "Seaquest": 42054.7,
    "SpaceInvaders": 1668.7,
    "Freeway": 29.6,
    "BattleZone": 37187.5,
    "DoubleDunk": -16.4,
    "NameThisGame": 8049.0,
    "Phoenix": 7242.6,
    "Qbert": 13455.0,
}
ATARI_5 = ("BattleZone", "DoubleDunk", "NameThisGame", "Phoenix", "Qbert")


def human_normalised(score: float, game: str) -> float:
    """(score - random) / (human - random)."""
    if game not in HUMAN_SCORES:
        raise KeyError(f"no human/random reference score for {game!r}; known: {sorted(HUMAN_SCORES)}")
    return (score - RANDOM_SCORES[game]) / (HUMAN_SCORES[game] - RANDOM_SCORES[game])


def iqm(values) -> float:
    """Interquartile mean: the mean of the middle 50% (scipy's trim_mean with 25% cut at each end)."""
    return float(stats.trim_mean(np.asarray(values, dtype=np.float64).ravel(), 0.25))


def rliable_iqm_ci(scores: dict[str, np.ndarray], reps: int = 2000, seed: int = 0) -> dict[str, dict]:
    """IQM with stratified-bootstrap 95% CIs from `rliable`; scores[algo] is (runs, games) normalised."""
    from rliable import library as rly
    from rliable import metrics

    with warnings.catch_warnings():  # arch (under rliable) deprecates RandomState; rliable still passes one
        warnings.simplefilter("ignore", FutureWarning)
        point, ci = rly.get_interval_estimates(
            scores,
            lambda x: np.array([metrics.aggregate_iqm(x)]),
            reps=reps,
            random_state=np.random.RandomState(seed),
        )
    return {k: {"iqm": float(point[k][0]), "ci95": [float(ci[k][0][0]), float(ci[k][1][0])]} for k in scores}

"""Training utilities: seeding, a resumable loop with a NaN guard."""

from xentlab.train.loop import (
    EpochSampler,
    NonFiniteLossError,
    TrainState,
    load_checkpoint,
    save_checkpoint,
    train,
)
from xentlab.train.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
    "EpochSampler",
    "NonFiniteLossError",
    "TrainState",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "train",
]

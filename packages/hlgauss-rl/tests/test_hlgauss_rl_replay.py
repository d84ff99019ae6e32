"""The replay buffer stores each observation once; next observations must still be exactly right."""

import numpy as np
import pytest
from hlgauss_rl.replay import ReplayBuffer


def _fill(rb: ReplayBuffer, steps: int, num_envs: int, end_every: int = 7):
    """Fake vector env: env e observes the value 1000 * e + t at step t. Every `end_every` steps env 0's
    episode ends (alternately terminated / truncated); the truncation's final obs is -(its next obs)."""
    for t in range(steps):
        obs = np.array([[1000 * e + t] for e in range(num_envs)], dtype=np.int32)
        term = np.zeros(num_envs, bool)
        trunc = np.zeros(num_envs, bool)
        final = np.empty(num_envs, dtype=object)
        if t % end_every == end_every - 1:
            if (t // end_every) % 2:
                term[0] = True
            else:
                trunc[0] = True
                final[0] = np.array([-(t + 1)], dtype=np.int32)
        rb.add(obs, np.full(num_envs, t % 3), np.full(num_envs, 0.5 * t), term, trunc, final)


@pytest.mark.parametrize("steps", [5, 40, 123])  # not full, full, wrapped several times
def test_next_obs_actions_rewards_and_flags(steps):
    rb = ReplayBuffer(capacity=3 * 16, num_envs=3, obs_shape=(1,), obs_dtype=np.int32, seed=0)
    _fill(rb, steps, 3)
    assert len(rb) == (min(steps, 16) - 1) * 3
    batch = {k: v.numpy() for k, v in rb.sample(4000).items()}
    obs = batch["obs"][:, 0]
    env, t = obs // 1000, obs % 1000
    assert (t < steps - 1).all(), "the newest row has no successor and must not be sampled"
    assert (t >= steps - 16).all(), "overwritten rows must not be sampled"
    np.testing.assert_array_equal(batch["actions"], t % 3)
    np.testing.assert_allclose(batch["rewards"], 0.5 * t)
    ended = (env == 0) & (t % 7 == 6)
    terminated = ended & ((t // 7) % 2 == 1)
    truncated = ended & ~terminated
    np.testing.assert_array_equal(batch["terminated"], terminated.astype(np.float32))
    nxt = batch["next_obs"][:, 0]
    np.testing.assert_array_equal(nxt[truncated], -(t[truncated] + 1))  # the true last observation
    regular = ~ended
    np.testing.assert_array_equal(nxt[regular], obs[regular] + 1)


def test_state_dict_roundtrip_gives_identical_samples():
    a = ReplayBuffer(64, 2, (1,), np.int32, seed=3)
    _fill(a, 50, 2)
    b = ReplayBuffer(64, 2, (1,), np.int32, seed=99)
    b.load_state_dict(a.state_dict())
    sa, sb = a.sample(32), b.sample(32)
    for k in sa:
        np.testing.assert_array_equal(sa[k].numpy(), sb[k].numpy())


def test_bad_use_raises():
    with pytest.raises(ValueError, match="at least two steps"):
        ReplayBuffer(3, 2, (1,))
    rb = ReplayBuffer(10, 1, (1,))
    with pytest.raises(RuntimeError, match="at least two steps"):
        rb.sample(4)
    with pytest.raises(ValueError, match="shape"):
        rb.load_state_dict(ReplayBuffer(20, 1, (1,)).state_dict())

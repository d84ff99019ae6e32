"""The DQN agent: runs with every head, resumes exactly from a checkpoint, and checks its inputs."""

import pytest
import torch
from hlgauss_rl.dqn import DQNConfig, evaluate, exploration_epsilon, linear_schedule, train
from hlgauss_rl.experiments import _dqn_config
from hlgauss_rl.losses import make_loss
from hlgauss_rl.mdp import MDPConfig, run_mdp_study
from hlgauss_rl.networks import make_network

TINY = dict(
    env_id="MinAtar/Breakout-v1",
    total_steps=240,
    num_envs=4,
    buffer_size=400,
    learning_starts=80,
    exploration_steps=120,
    target_update_period=40,
    max_episode_steps=100,
    eval_episodes=2,
    curve_points=3,
    log_every=80,
    tensorboard=False,
)


@pytest.mark.parametrize("loss", ["c51", "hl_gauss"])
def test_train_runs_and_counts_updates(tmp_path, loss):
    out = train(DQNConfig(loss=loss, **TINY), tmp_path)
    assert out["updates"] == (240 - 80) // 4  # one update per train_frequency = 4 environment steps
    assert len(out["eval_returns"]) == 2 and len(out["curve"]) == 3
    assert out["sps"] > 0 and torch.isfinite(torch.tensor(out["param_norm"]))
    assert not (tmp_path / "checkpoint.pt").exists()


def test_resume_from_checkpoint_is_exact(tmp_path):
    """An interrupted run resumed from its checkpoint ends exactly where an uninterrupted run ends."""
    cfg = dict(TINY, loss="hl_gauss", checkpoint_every=120, tensorboard=True)
    full = train(DQNConfig(**cfg), tmp_path / "a")
    halted = train(DQNConfig(**cfg, halt_at=120), tmp_path / "b")
    assert halted == {"halted_at": 120} and (tmp_path / "b" / "checkpoint.pt").exists()
    resumed = train(DQNConfig(**cfg), tmp_path / "b")
    for key in ("param_norm", "eval_returns", "curve", "updates", "episodes"):
        assert resumed[key] == full[key], key
    assert list((tmp_path / "a" / "tb").iterdir()), "TensorBoard event file written"
    with pytest.raises(ValueError, match="another config"):
        train(DQNConfig(**dict(cfg, lr=1e-3), halt_at=120), tmp_path / "c")
        train(DQNConfig(**dict(cfg, lr=5e-4)), tmp_path / "c")


def test_same_seed_same_result_and_random_policy(tmp_path):
    a = train(DQNConfig(loss="mse", **TINY), tmp_path / "a")
    b = train(DQNConfig(loss="mse", **TINY), tmp_path / "b")
    assert a["param_norm"] == b["param_norm"] and a["eval_returns"] == b["eval_returns"]
    rnd = evaluate(None, None, DQNConfig(**TINY), episodes=3, epsilon=1.0, seed=0, device="cpu")
    assert len(rnd) == 3 and all(r >= 0 for r in rnd)


def test_mdp_study_is_deterministic_and_recovers_q_star_without_noise():
    cfg = MDPConfig(
        n_states=10, iterations=30, steps_per_iteration=20, noise_scale=0.0, losses=("mse", "hl_gauss")
    )
    a, b = run_mdp_study(cfg, 3), run_mdp_study(cfg, 3)
    assert a["rmse_mse"] == b["rmse_mse"] and a["rmse_hl_gauss"] == b["rmse_hl_gauss"]
    # Noise-free data: both fit Q* to a small fraction of its scale.
    assert a["rmse_mse"] < 0.1 * a["q_star_max"] and a["rmse_hl_gauss"] < 0.1 * a["q_star_max"]


def test_networks_shapes_and_errors():
    loss = make_loss("hl_gauss", -10.0, 10.0, 51)
    net = make_network("minatar", (4, 10, 10), 3, loss.n_outputs)
    assert net(torch.zeros(5, 4, 10, 10, dtype=torch.uint8)).shape == (5, 3, 51)
    wide = make_network("nature", (4, 84, 84), 6, 1, width=2)
    assert wide(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 6, 1)
    with pytest.raises(ValueError, match="expects"):
        make_network("minatar", (4, 84, 84), 3, 1)
    with pytest.raises(ValueError, match="unknown network"):
        make_network("resnet", (4, 10, 10), 3, 1)


def test_config_errors_and_schedule():
    with pytest.raises(ValueError, match="unknown DQN config keys"):
        _dqn_config({"learning_rate": 1e-3}, 0)
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == 0.1


def _dopamine_epsilon(decay_period: int, step: int, warmup_steps: int, epsilon: float) -> float:
    """Dopamine's linearly_decaying_epsilon (dopamine/jax/agents/dqn/dqn_agent.py), written out in float64:
    epsilon + clip((1 - epsilon) * (decay_period + warmup_steps - step) / decay_period, 0, 1 - epsilon).
    The JaxDQNAgent calls it with warmup_steps = min_replay_history: epsilon stays 1 until learning starts."""
    bonus = (1.0 - epsilon) * (decay_period + warmup_steps - step) / decay_period
    return epsilon + min(max(bonus, 0.0), 1.0 - epsilon)


def test_full_scale_epsilon_follows_dopamine_schedule():
    """--scale full claims Dopamine's DQN schedule: epsilon 1 for the 20k warm-up steps, then linear to 0.01
    over 250k steps (a defect found in the fidelity audit: the decay used to start at step 0)."""
    from pathlib import Path

    from xentlab.testing import load_reproduce

    reproduce = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    cfg = _dqn_config({k: v for k, v in reproduce.ATARI_FULL.items()}, 0)
    for step in (0, 10_000, 20_000, 20_001, 100_000, 145_000, 269_999, 270_000, 1_000_000):
        expected = _dopamine_epsilon(250_000, step, 20_000, 0.01)
        assert exploration_epsilon(cfg, step) == pytest.approx(expected, abs=1e-12), step


def test_epsilon_warmup_default_keeps_cleanrl_schedule():
    """exploration_warmup = 0 (the cpu scale) is cleanrl's linear_schedule from step 0, unchanged."""
    cfg = DQNConfig(start_e=1.0, end_e=0.1, exploration_steps=100)
    for step in (0, 50, 100, 1000):
        assert exploration_epsilon(cfg, step) == linear_schedule(1.0, 0.1, 100, step)

"""Reinforcement learning with verifiable rewards for the tiny (and full-size) causal LMs.

``xentlab.rl.rollout``: one rollout function (KV-cache sampling, rewards, old log-probs, a
right-padded batch with a response mask) shared by every RLVR-style package, and the per-token
log-probs of the current policy. ``xentlab.rl.grpo``: group-normalised advantages and the GRPO
clipped objective as trl implements it. Import from the submodules (they import torch).
"""

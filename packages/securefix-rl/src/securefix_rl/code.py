"""The code part of the securefix unit's resume key (``Experiment.version`` in reproduce.py).

The runner skips a finished unit whose key (experiment, version, config, seed) matches
(``xentlab.repro.units``). With the default version "1" the key named only the config, so an edit of
the code a unit runs (the PPO advantages in ``xentlab.rl.ppo``, the reward, the checker) left the
old units in place and a restarted run would have reported them as the new code's results. The
version now carries a hash of that code (``xentlab.data.cache``, "The key rule"): this package's
modules, the core modules the unit calls (PPO-lite, rollouts, tokenizer, the tiny-LM stack and its
loss backend) and the libraries whose numbers end up in the metrics.
"""

from __future__ import annotations

import functools

# Hand part of the version: bump it for a protocol change that neither the config nor the hashed
# code shows. 2: the key follows the code (this module); the run that fixed ppo_advantages' whitening.
# 3: the unit runs with PYTHONHASHSEED=0 (Experiment.fixed_hash_seed in reproduce.py): CodeBLEU's data-flow
# match follows the string-hash order.
PROTOCOL = "3"

# Every module of this package that a unit runs (figures.py only draws the stored results).
PACKAGE_MODULES = (
    "securefix_rl.checker",
    "securefix_rl.code",
    "securefix_rl.codebleu_score",
    "securefix_rl.evaluate",
    "securefix_rl.experiment",
    "securefix_rl.full",
    "securefix_rl.lang",
    "securefix_rl.reward",
    "securefix_rl.semantic",
    "securefix_rl.task",
    "securefix_rl.train",
)

# Core modules outside the tiny-LM stack (``xentlab.lm.code.LM_STACK_MODULES`` is added by
# ``lm_stack_digests``) whose code shapes a unit's numbers.
CORE_MODULES = ("xentlab.rl.ppo", "xentlab.rl.rollout", "xentlab.data.tokenizer")

LIBRARIES = (
    "numpy",
    "torch",
    "transformers",
    "tokenizers",
    "codebleu",
    "tree-sitter",
    "tree-sitter-python",
    "peft",
)


@functools.lru_cache(maxsize=1)
def unit_code() -> str:
    """A 16-hex hash of the unit's code and libraries (memoised; tests clear it with ``cache_clear``)."""
    from xentlab.data.cache import code_key
    from xentlab.lm.code import lm_stack_digests, module_digest

    own = [module_digest(name) for name in PACKAGE_MODULES]
    return code_key(*own, *lm_stack_digests(*CORE_MODULES), libraries=LIBRARIES)


def unit_version() -> str:
    """``Experiment.version`` of the securefix experiment: the hand part, then the code hash."""
    return f"{PROTOCOL}-{unit_code()}"


__all__ = ["CORE_MODULES", "PACKAGE_MODULES", "PROTOCOL", "unit_code", "unit_version"]

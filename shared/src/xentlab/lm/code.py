"""The code of the tiny-LM stack as one part of a cache key (xentlab.data.cache, "The key rule").

A package that caches a model trained or scored with ``xentlab.lm`` (pacs' SFT model, tru's original model,
dco's base) must rebuild it when any module of that stack changes: the model, the LM loss and its kernels,
the training loop, generation. ``lm_stack_digests`` lists them once, so the packages do not each keep a
copy of the list (and drift apart when a module is added to the stack).
"""

from __future__ import annotations

import importlib

from xentlab.data.cache import source_digest

# The modules whose code shapes a tiny LM's weights and scores: model, loss (and the fused kernels behind
# it), training loop and seeding, sampling. Each sets ``SOURCE_DIGEST`` (its source as imported, i.e. as it
# runs); they are imported lazily, when a key is first asked for, to keep ``import xentlab`` light.
LM_STACK_MODULES = (
    "xentlab.models.tiny_lm",
    "xentlab.lm.train",
    "xentlab.lm.generate",
    "xentlab.kernels.lce",
    "xentlab.kernels.torch_lce",
    "xentlab.kernels.token_chunks",
    "xentlab.kernels.filtering",
    "xentlab.train.loop",
    "xentlab.train.seeding",
)


def module_digest(name: str) -> str:
    """The source digest of module ``name``: its ``SOURCE_DIGEST`` (the file as imported), or, for a module
    that sets none (a package's own data module, say), a hash of its file now."""
    module = importlib.import_module(name)
    digest = getattr(module, "SOURCE_DIGEST", None)
    return digest if digest is not None else source_digest(module.__file__)


def lm_stack_digests(*extra_modules: str) -> list[str]:
    """Source digests of ``extra_modules`` (module names, e.g. a data generator the package trains on),
    then of ``LM_STACK_MODULES``, then the LM loss backend in use ("cce" or "plain", from
    ``XENTLAB_LM_LOSS``: it changes the float reductions of training). Pass them to ``code_key``."""
    from xentlab.lm import train as lm_train

    names = (*extra_modules, *LM_STACK_MODULES)
    return [module_digest(name) for name in names] + [lm_train.lm_loss_backend()]


__all__ = ["LM_STACK_MODULES", "lm_stack_digests", "module_digest"]

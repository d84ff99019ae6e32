"""The core modules that packages put in their cache keys set ``SOURCE_DIGEST``: the hash of their source
as imported (xentlab.data.cache, "The key rule"), equal to ``source_digest(__file__)``. ``tiny_lm`` writes
the hash out instead of importing ``xentlab.data.cache`` (which imports torch), to stay cheap to import."""

import importlib
import subprocess
import sys

import pytest

from xentlab.data.cache import source_digest
from xentlab.lm.code import LM_STACK_MODULES

MODULES = [
    # hashed by core-tuning, pld and tfup
    "xentlab.models.cnn",
    "xentlab.data.augment",
    "xentlab.losses.ntxent",
    "xentlab.losses.supcon",
    "xentlab.train.schedules",
    # the Trainer-default optimiser prob-unlearn's fine-tuning key hashes
    "xentlab.lm.trainer_defaults",
    # every module of the LM stack (xentlab.lm.code reads their SOURCE_DIGEST)
    *LM_STACK_MODULES,
]


@pytest.mark.parametrize("name", MODULES)
def test_module_sets_its_source_digest(name):
    module = importlib.import_module(name)
    assert module.SOURCE_DIGEST == source_digest(module.__file__)


def test_tiny_lm_stays_free_of_torch():
    # xentlab.models.tiny_lm documents a cheap import (transformers and torch are imported in its functions)
    code = "import sys, xentlab.models.tiny_lm; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

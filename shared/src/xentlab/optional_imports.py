"""Imports of heavy optional dependencies, made cheap.

Each helper imports one optional library on first use (so ``import xentlab`` stays light) and
keeps it from dragging in unrelated heavy modules at import time.
"""

from __future__ import annotations

import sys
from types import ModuleType

# Modules MONAI's eager ``import monai`` pulls in only for networks nobody here uses (Transchex
# imports transformers at import time: ~30 s on a loaded 2-core box). Blocked during the import only.
_MONAI_SKIP = ("transformers",)


def import_monai() -> ModuleType:
    """``import monai``, without the optional heavy dependencies MONAI loads eagerly.

    ``import monai`` imports every submodule, and ``monai.networks.nets.transchex`` imports
    ``transformers`` when it is installed (tens of seconds). While MONAI imports, those modules are
    marked as absent, so MONAI's ``optional_import`` treats them as missing; the marks are removed
    right after, so a later ``import transformers`` elsewhere in the process works normally. Only
    MONAI's Transchex network loses its optional backend.
    """
    if "monai" in sys.modules and sys.modules["monai"] is not None:
        return sys.modules["monai"]
    blocked = [m for m in _MONAI_SKIP if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]  # makes `import m` raise ImportError
    try:
        import monai
    finally:
        for m in blocked:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
    return monai

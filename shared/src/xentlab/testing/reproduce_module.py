"""Import a package's ``reproduce.py`` as a module, so a test can read its experiments, configs and
claims or call one experiment function directly.

reproduce.py is a script (no package around it), so it is loaded from its path; each call executes
it afresh under a name of its own, which keeps monkeypatched configs of one test out of another.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

_counter = itertools.count()


def load_reproduce(reproduce_py: str | Path) -> ModuleType:
    """Execute ``reproduce_py`` (its ``if __name__ == "__main__"`` block does not run) and return it."""
    path = Path(reproduce_py)
    if not path.is_file():
        raise FileNotFoundError(f"no reproduce.py at {path}")
    name = f"_reproduce_{path.parent.name.replace('-', '_')}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

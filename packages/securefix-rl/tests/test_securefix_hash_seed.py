"""CodeBLEU depends on Python's string-hash seed, so the securefix experiment pins it (fifth cpu run).

The PyPI ``codebleu`` package (like the official CodeBLEU) builds the data-flow variable lists with
``list(set(...))`` over strings and compares them in order. An assignment inside a loop is visited
twice by the data-flow extractor and merged through such a set, so the order of its parent variables,
and with it the normalised data flow a candidate is matched on, follows ``PYTHONHASHSEED``. The
samples below were found by trying three renamings of one loop on hash seeds 0-5 (their scores there:
seed 0 -> 1.0, 1.0, 0.917; seed 1 -> 0.917, 0.917, 1.0).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from xentlab.testing import load_reproduce

REF = "def f ( a , b ) :\n    for i in a :\n        x = a + b + i\n        y = x + b\n    return y\n"
CANDS = [
    "def f ( a , b ) :\n    for i in a :\n        x = b + a + i\n        y = x + b\n    return y\n",
    "def f ( a , b ) :\n    for i in a :\n        x = i + b + a\n        y = b + x\n    return y\n",
    "def f ( p , q ) :\n    for i in p :\n        x = q + p + i\n        y = x + q\n    return y\n",
]

PROBE = f"""
import json
from securefix_rl.codebleu_score import corpus_codebleu
refs, cands = {json.dumps([REF] * len(CANDS))}, {json.dumps(CANDS)}
print(json.dumps([corpus_codebleu([c], [r])["dataflow_match_score"] for c, r in zip(cands, refs)]))
"""


def _dataflow_scores(hash_seed: str) -> list[float]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_codebleu_dataflow_depends_on_the_hash_seed():
    # the same samples, scored in two processes that differ only in PYTHONHASHSEED
    at0, at1 = _dataflow_scores("0"), _dataflow_scores("1")
    assert at0 != at1, (at0, at1)
    assert at0 == _dataflow_scores("0")  # and a pinned seed gives the same value again


def test_every_securefix_experiment_pins_the_hash_seed():
    repro = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    for exp in repro.EXPERIMENTS:  # all compute CodeBLEU, at every scale (cpu and full included)
        assert exp.fixed_hash_seed is True, exp.name

"""``Experiment(fixed_hash_seed=True)``: a unit whose numbers follow Python's string-hash order runs with
``PYTHONHASHSEED=0`` from every entry point, so it gives the same numbers in processes started with
different hash seeds; without the flag (the default) a unit runs in-process, as before.

The toy experiment returns ``hash("abc")`` and the iteration order of a set of strings, the kind of
dependence that set iteration inside a third-party metric (CodeBLEU's data-flow match) has. Each check
runs the toy in fresh interpreters (subprocesses) started with different ``PYTHONHASHSEED`` values.
"""

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from xentlab.repro import Experiment

TOY = textwrap.dedent(
    '''
    import json, os, sys
    from pathlib import Path

    from xentlab.repro import Experiment
    from xentlab.repro.runner import UnitJob, run_experiments, run_unit
    from xentlab.repro.units import unit_key, unit_paths


    def toy(cfg, seed, ctx):
        """Numbers that depend on the process's string-hash seed, and where they were computed."""
        order = list({f"v{i}" for i in range(8)})  # a permutation of 0..7 read as one number
        return {
            "hash": float(hash("abc") % 1_000_003),
            "order": float("".join(x[1:] for x in order)),
            "pinned": float(sys.flags.hash_randomization == 0),
            "pid": float(os.getpid()),
        }


    CONFIGS = {"smoke": {}}
    FLAGGED = Experiment("flagged", toy, CONFIGS, fixed_hash_seed=True)
    PLAIN = Experiment("plain", toy, CONFIGS)


    def one(exp, out):
        unit_path, log_path = unit_paths(out / "units", exp.name, 0)
        job = UnitJob(exp, {}, 0, unit_key(exp, {}, 0, scale="smoke"), unit_path, log_path, "smoke", "cpu", 1, False)
        return run_unit(job)["metrics"]


    if __name__ == "__main__":
        out, modes = Path(sys.argv[1]), sys.argv[2].split(",")
        got = {"main_pid": float(os.getpid()), "env_after": os.environ.get("PYTHONHASHSEED")}
        for mode in modes:
            if mode == "flagged":
                got[mode] = one(FLAGGED, out / mode)
            elif mode == "plain":
                got[mode] = one(PLAIN, out / mode)
            elif mode == "loaded":  # as verify's child: the module is loaded from its path, not importable
                from xentlab.testing.reproduce_module import load_reproduce

                got[mode] = one(load_reproduce(Path(__file__)).FLAGGED, out / mode)
            elif mode == "pool":  # the runner's spawn pool, two workers
                res = run_experiments(
                    [FLAGGED], scale="smoke", seeds=[0, 1], out_dir=out / mode, device="cpu", workers=2,
                    show_progress=False, echo=lambda s: None,
                )
                got[mode] = [res.per_seed["flagged"][s]["metrics"] for s in (0, 1)]
            got["env_after"] = os.environ.get("PYTHONHASHSEED")
        print(json.dumps(got))
    '''
)


def _run_toy(script: Path, out: Path, hash_seed: str, modes: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["PYTHONHASHSEED"] = hash_seed
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), str(out), modes], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> dict[str, dict]:
    """The toy in three interpreters: PYTHONHASHSEED=1 (every entry point), =2 and =0."""
    tmp = tmp_path_factory.mktemp("hash_seed")
    script = tmp / "toy_reproduce.py"
    script.write_text(TOY)
    runs = {"1": "flagged,plain,loaded,pool", "2": "flagged,plain", "0": "flagged,plain"}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futs = {h: pool.submit(_run_toy, script, tmp / f"h{h}", h, modes) for h, modes in runs.items()}
        return {h: f.result() for h, f in futs.items()}


def _numbers(m: dict) -> tuple[float, float]:
    return m["hash"], m["order"]


def test_flag_gives_the_same_numbers_across_hash_seeds(toy_runs):
    a, b, zero = toy_runs["1"], toy_runs["2"], toy_runs["0"]
    ref = _numbers(zero["plain"])  # what a process started with PYTHONHASHSEED=0 computes
    for run in (a, b, zero):
        assert _numbers(run["flagged"]) == ref
        assert run["flagged"]["pinned"] == 1.0
    assert _numbers(a["loaded"]) == ref  # verify's child loads reproduce.py from its path
    assert [_numbers(m) for m in a["pool"]] == [ref, ref]  # the runner's spawn pool
    assert all(m["pinned"] == 1.0 for m in a["pool"])


def test_flag_runs_in_a_child_only_when_the_process_is_not_pinned(toy_runs):
    a, zero = toy_runs["1"], toy_runs["0"]
    assert a["flagged"]["pid"] != a["main_pid"] and a["loaded"]["pid"] != a["main_pid"]
    assert zero["flagged"]["pid"] == zero["main_pid"]  # already PYTHONHASHSEED=0: in-process
    assert a["env_after"] == "1"  # the parent's environment is restored


def test_without_the_flag_units_run_in_process_and_follow_the_hash_seed(toy_runs):
    a, b = toy_runs["1"], toy_runs["2"]
    for run in (a, b):
        assert run["plain"]["pid"] == run["main_pid"] and run["plain"]["pinned"] == 0.0
    # the toy does depend on the hash seed (hash("abc") differs across seeds 1 and 2), so the flag matters
    assert a["plain"]["hash"] != b["plain"]["hash"]
    assert _numbers(a["plain"]) != _numbers(toy_runs["0"]["plain"])


def test_flag_defaults_off_and_is_not_in_the_resume_key():
    from xentlab.repro.units import unit_key

    def fn(cfg, seed, ctx):
        return {}

    plain = Experiment("e", fn, {"cpu": {}})
    assert plain.fixed_hash_seed is False
    assert unit_key(plain, {}, 0, scale="cpu") == unit_key(
        Experiment("e", fn, {"cpu": {}}, fixed_hash_seed=True), {}, 0, scale="cpu"
    )

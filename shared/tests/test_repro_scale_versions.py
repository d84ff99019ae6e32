"""Per-scale experiment versions (``Experiment(version={scale: version})``).

A fix that only the ``--scale full`` path computes must invalidate the full units and leave the committed
cpu (and smoke) units resumable; one version string for every scale must keep the keys it always made.
"""

from pathlib import Path

import pytest

from xentlab.repro import Experiment, Paper, run_cli
from xentlab.repro.units import unit_key

PAPER = Paper(title="Toy scale versions", package="toyversions")
CALLS: list[tuple[str, int]] = []
CONFIGS = {"smoke": {"base": 0.0}, "cpu": {"base": 1.0}, "full": {"base": 2.0}}


def score(cfg, seed, ctx):
    CALLS.append((ctx.experiment, seed))
    return {"acc": cfg["base"] + seed / 10}


def test_a_mapping_of_one_version_makes_the_string_keys():
    # so a package that moves to a mapping with unchanged versions keeps every committed unit
    plain = Experiment("e", score, CONFIGS, version="3")
    mapped = Experiment("e", score, CONFIGS, version={"smoke": "3", "cpu": "3", "full": "3"})
    for scale, cfg in CONFIGS.items():
        assert unit_key(plain, cfg, 0, scale=scale) == unit_key(mapped, cfg, 0, scale=scale)


def test_a_full_only_bump_moves_the_full_key_alone():
    before = Experiment("e", score, CONFIGS, version="3")
    after = Experiment("e", score, CONFIGS, version={"smoke": "3", "cpu": "3", "full": "3+full2"})
    for scale in ("smoke", "cpu"):
        assert unit_key(before, CONFIGS[scale], 1, scale=scale) == unit_key(
            after, CONFIGS[scale], 1, scale=scale
        )
    assert unit_key(before, CONFIGS["full"], 1, scale="full") != unit_key(
        after, CONFIGS["full"], 1, scale="full"
    )
    assert after.version_at("full") == "3+full2" and before.version_at("full") == "3"


def run(out: Path, exp: Experiment) -> dict:
    CALLS.clear()
    return run_cli(
        PAPER, [exp], [], argv=["--out", str(out), "--quiet", "--scale", "smoke", "--seeds", "0", "1"],
        package_dir=out.parent,
    )  # fmt: skip


def test_the_runner_resumes_units_whose_scale_kept_its_version(tmp_path):
    out = tmp_path / "r"
    run(out, Experiment("e", score, CONFIGS, version="1"))
    assert sorted(CALLS) == [("e", 0), ("e", 1)]
    # a full-only bump: the smoke units are reused, nothing recomputed
    r = run(out, Experiment("e", score, CONFIGS, version={"smoke": "1", "cpu": "1", "full": "2"}))
    assert CALLS == [] and r["units"] == {"computed": 0, "reused": 2}
    # a smoke bump recomputes them
    r = run(out, Experiment("e", score, CONFIGS, version={"smoke": "2", "cpu": "1", "full": "2"}))
    assert sorted(CALLS) == [("e", 0), ("e", 1)] and r["units"] == {"computed": 2, "reused": 0}


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ({"cpu": "1", "full": "1"}, r"must name every scale the experiment offers; missing \['smoke'\]"),
        ({"smoke": "1", "cpu": "1", "full": "1", "large": "1"}, r"unknown scales \['large'\]"),
        ({"smoke": "1", "cpu": 2, "full": "1"}, r"versions must be strings"),
        (3, r"must be a string or a mapping"),
    ],
)
def test_a_bad_version_is_a_clear_error(version, message):
    with pytest.raises(ValueError, match=message):
        Experiment("e", score, CONFIGS, version=version)


def test_a_scale_without_a_config_needs_no_version():
    exp = Experiment("e", score, {"smoke": {}, "cpu": {}, "full": None}, version={"smoke": "1", "cpu": "2"})
    assert exp.version_at("cpu") == "2"
    with pytest.raises(ValueError, match="no version for scale 'full'"):
        exp.version_at("full")

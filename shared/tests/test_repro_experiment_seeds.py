"""Per-experiment seed lists (``Experiment(..., seeds={scale: [...]})``), end to end on a fake package.

A confirmatory arm must run on fresh seeds while the other arms keep the run's seeds: its units, result.json,
report.md and derived metrics must name the seeds that really ran, and the resume cache must keep working.
"""

import json
from pathlib import Path

import pytest

from xentlab.repro import Claim, Derived, Experiment, Paper, Results, aggregate, difference, run_cli
from xentlab.repro.report import metrics_table
from xentlab.repro.units import unit_key
from xentlab.testing.smoke import validate_result

PAPER = Paper(title="Toy seeds", package="toyseeds")
CALLS: list[tuple[str, int]] = []


def score(cfg, seed, ctx):
    """A deterministic function of (experiment offset, seed), so expected values are hand-computable."""
    CALLS.append((ctx.experiment, seed))
    return {"acc": cfg["base"] + seed / 10, "curve": [seed, seed + 1]}


# "plain" runs the run's seeds; "fresh" and "other" declare their own at smoke scale (they share seed 4)
PLAIN = Experiment("plain", score, {"smoke": {"base": 0.0}, "cpu": {"base": 0.0}})
FRESH = Experiment("fresh", score, {"smoke": {"base": 1.0}, "cpu": {"base": 1.0}}, seeds={"smoke": (3, 4)})
OTHER = Experiment("other", score, {"smoke": {"base": 2.0}}, seeds={"smoke": [4, 5]})
EXPS = [PLAIN, FRESH, OTHER]
DERIVED = [
    Derived("gap/other_vs_fresh", difference("other/acc", "fresh/acc")),  # shared seed: 4
    Derived("twice_gap", lambda m: 2 * m["gap/other_vs_fresh"]),  # reads a derived metric: its seeds
]
CLAIMS = [
    Claim("plain-pos", "plain is non-negative", "plain/acc", ">= 0"),
    Claim("fresh-high", "fresh above 1", "fresh/acc", "> 1", agg="min"),
    Claim("gap-one", "other ahead of fresh", "gap/other_vs_fresh", "> 0"),
]


def run(out: Path, *args, exps=EXPS, derived=DERIVED, claims=CLAIMS):
    CALLS.clear()
    return run_cli(
        PAPER,
        exps,
        claims,
        derived=derived,
        argv=["--out", str(out), "--quiet", "--scale", "smoke", *args],
        package_dir=out.parent,
    )


def test_each_experiment_runs_its_own_seeds_and_derived_pairs_the_shared_ones(tmp_path):
    r = run(tmp_path / "r", "--seeds", "0", "1")
    assert sorted(CALLS) == [
        ("fresh", 3),
        ("fresh", 4),
        ("other", 4),
        ("other", 5),
        ("plain", 0),
        ("plain", 1),
    ]
    assert r["seeds"] == [0, 1]  # the run's list, meaning what it meant before
    assert r["experiment_seeds"] == {"plain": [0, 1], "fresh": [3, 4], "other": [4, 5]}
    m = r["metrics"]
    assert m["plain/acc"]["per_seed"] == {"0": 0.0, "1": 0.1}
    assert m["fresh/acc"]["per_seed"] == {"3": 1.3, "4": 1.4}
    # paired on the one shared seed, 4: (2 + 0.4) - (1 + 0.4) = 1
    assert m["gap/other_vs_fresh"]["per_seed"] == {"4": pytest.approx(1.0)}
    assert m["twice_gap"]["per_seed"] == {"4": pytest.approx(2.0)} and m["twice_gap"]["n"] == 1
    # claims are judged on their metric's seeds, and say which
    claims = {c["id"]: c for c in r["claims"]}
    assert claims["plain-pos"]["seeds"] == [0, 1] and claims["plain-pos"]["n"] == 2
    assert claims["fresh-high"]["seeds"] == [3, 4] and claims["fresh-high"]["value"] == pytest.approx(1.3)
    assert claims["gap-one"]["seeds"] == [4] and claims["gap-one"]["verdict"] == "holds"
    # the units are stored under their true seeds
    units = tmp_path / "r" / "units"
    assert sorted(p.name for p in (units / "fresh").glob("seed*.json")) == ["seed3.json", "seed4.json"]
    unit = json.loads((units / "fresh" / "seed3.json").read_text())
    assert unit["seed"] == 3 and unit["key"] == unit_key(FRESH, FRESH.config("smoke"), 3, scale="smoke")
    validate_result(json.loads((tmp_path / "r" / "result.json").read_text()))


def test_seeds_flag_overrides_only_experiments_without_their_own(tmp_path):
    r = run(tmp_path / "r", "--seeds", "7")
    assert r["experiment_seeds"] == {"plain": [7], "fresh": [3, 4], "other": [4, 5]}
    # at a scale an experiment declares no list for, it runs the run's seeds
    r = run(tmp_path / "c", "--seeds", "2", exps=[PLAIN, FRESH], derived=[], claims=[])
    assert r["experiment_seeds"] == {"plain": [2], "fresh": [3, 4]}
    r = run_cli(PAPER, [PLAIN, FRESH], [], argv=["--out", str(tmp_path / "cpu"), "--quiet", "--scale", "cpu",
                "--seeds", "2"], package_dir=tmp_path)  # fmt: skip
    assert r["experiment_seeds"] == {"plain": [2], "fresh": [2]}


def test_no_shared_seed_is_a_clear_error_before_any_unit_runs(tmp_path, capsys):
    bad = [Derived("gap/plain_vs_fresh", difference("plain/acc", "fresh/acc"))]
    with pytest.raises(SystemExit) as exc:
        run(tmp_path / "r", "--seeds", "0", "1", derived=bad)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: derived metric 'gap/plain_vs_fresh'")
    assert (
        "share no seed" in err[0] and "fresh at seeds [3, 4]" in err[0] and "plain at seeds [0, 1]" in err[0]
    )
    assert CALLS == [] and not (tmp_path / "r" / "result.json").exists()
    # the same derived metric is fine once the seeds overlap (--seeds 3 gives plain seed 3, shared with fresh)
    r = run(tmp_path / "r", "--seeds", "3", derived=bad)
    assert r["metrics"]["gap/plain_vs_fresh"]["per_seed"] == {"3": pytest.approx(-1.0)}


def test_a_derived_metric_that_catches_the_key_error_is_still_only_on_shared_seeds(tmp_path):
    # m.get(...) swallows the KeyError of an input missing at a seed; the seed is still not shared
    lenient = [Derived("lenient", lambda m: m.get("other/acc", 0.0) - m["fresh/acc"])]
    r = run(tmp_path / "r", "--seeds", "0", derived=lenient, claims=[])
    assert r["metrics"]["lenient"]["per_seed"] == {"4": pytest.approx(1.0)}


def test_derived_reading_an_experiment_absent_at_this_scale_keeps_the_old_behaviour(tmp_path):
    # "other" has no cpu config: as before, its derived metric is undefined (None) on the run's seeds, no error
    r = run_cli(PAPER, EXPS, [], derived=[DERIVED[0]], argv=["--out", str(tmp_path / "r"), "--quiet", "--scale",
                "cpu", "--seeds", "0"], package_dir=tmp_path)  # fmt: skip
    assert r["metrics"]["gap/other_vs_fresh"]["per_seed"] == {"0": None}


def test_aggregate_raises_when_the_seeds_turn_out_disjoint():
    # a function the pre-flight cannot see through (it reads the metrics by iterating) is caught afterwards
    res = Results(scale="cpu", seeds=[0], exp_seeds={"a": [0], "b": [1]})
    res.per_seed = {"a": {0: {"metrics": {"x": 1.0}}}, "b": {1: {"metrics": {"x": 2.0}}}}

    def both(m):
        return m["a/x"] + m["b/x"]

    from xentlab.repro import ReproError

    with pytest.raises(ReproError, match=r"'both' reads inputs that share no seed \(a at seeds \[0\], b at"):
        aggregate(res, [Derived("both", both)])


def test_one_seed_list_keeps_the_plain_dict_and_old_results(tmp_path):
    # without own seeds a Derived function still receives a plain dict and every metric the run's seeds
    seen = []
    derived = [Derived("d", lambda m: seen.append(type(m)) or m["plain/acc"])]
    r = run(tmp_path / "r", "--seeds", "0", "1", exps=[PLAIN], derived=derived, claims=[])
    assert set(seen) == {dict}
    assert {k: list(v["per_seed"]) for k, v in r["metrics"].items()} == {
        "plain/acc": ["0", "1"],
        "d": ["0", "1"],
    }


def test_resume_keeps_units_and_adding_a_seed_runs_only_that_unit(tmp_path):
    first = run(tmp_path / "r", "--seeds", "0")
    again = run(tmp_path / "r", "--seeds", "0")
    assert CALLS == [] and again["units"] == {"computed": 0, "reused": 5}
    assert again["metrics"] == first["metrics"]
    longer = Experiment("fresh", score, {"smoke": {"base": 1.0}}, seeds={"smoke": (3, 4, 6)})
    r = run(tmp_path / "r", "--seeds", "0", exps=[PLAIN, longer, OTHER])
    assert CALLS == [("fresh", 6)] and r["units"] == {"computed": 1, "reused": 5}
    assert list(r["metrics"]["fresh/acc"]["per_seed"]) == ["3", "4", "6"]


def test_declaring_seeds_leaves_the_unit_key_alone():
    # the key is (experiment, version, config, seed): a package that declares no seeds keeps its committed units,
    # and a unit that stays in a declared list is resumed
    cfg = {"base": 0.0}
    plain = Experiment("e", score, {"cpu": cfg})
    own = Experiment("e", score, {"cpu": cfg}, seeds={"cpu": (0, 5)})
    assert unit_key(plain, cfg, 0, scale="cpu") == unit_key(own, cfg, 0, scale="cpu")
    assert unit_key(plain, cfg, 0, scale="cpu") != unit_key(plain, cfg, 5, scale="cpu")


def test_report_names_the_true_seeds(tmp_path):
    run(tmp_path / "r", "--seeds", "0", "1")
    report = (tmp_path / "r" / "report.md").read_text()
    assert "seeds [0, 1]" in report
    assert "Experiments on their own seeds: `fresh` [3, 4]; `other` [4, 5]." in report
    # one table per seed list, with a column per seed, the run's seeds first
    assert "| metric | mean | std | 95% CI | n | seed 0 | seed 1 |" in report
    assert "Seeds 3, 4:\n\n| metric | mean | std | 95% CI | n | seed 3 | seed 4 |\n" in report
    assert "Seeds 4:\n\n| metric | mean | std | 95% CI | n | seed 4 |\n" in report
    assert report.index("| seed 0 | seed 1 |") < report.index("Seeds 3, 4:")
    assert "| `fresh/acc` | 1.35 | 0.071 | [1.3, 1.4] | 2 | 1.3 | 1.4 |" in report
    # the claims table says when a claim's seeds are not the run's
    assert "(n=2) | `plain/acc` >= 0" in report
    assert "1.3 (min of 2 seeds: 3, 4) | `fresh/acc` > 1" in report
    assert "1 (n=1; seeds 4) | `gap/other_vs_fresh` > 0" in report


def test_metrics_table_with_one_seed_list_is_one_table():
    metrics = {"a/x": {"mean": 1.0, "std": 0.0, "n": 2, "ci95": [1.0, 1.0], "per_seed": {"0": 1.0, "2": 1.0}}}
    table = metrics_table(metrics, [0, 2])
    assert table.splitlines()[0] == "| metric | mean | std | 95% CI | n | seed 0 | seed 2 |"
    assert "Seeds" not in table and table.splitlines()[2] == "| `a/x` | 1 | 0 | [1, 1] | 2 | 1 | 1 |"


def test_validate_result_accepts_old_and_new_results_and_rejects_wrong_seeds(tmp_path):
    new = run(tmp_path / "r", "--seeds", "0", "1")
    new = json.loads((tmp_path / "r" / "result.json").read_text())
    validate_result(new)
    old = {k: v for k, v in new.items() if k != "experiment_seeds"}  # schema 1: one seed list, no such field
    old["claims"] = [{k: v for k, v in c.items() if k != "seeds"} for c in new["claims"]]
    validate_result(old)
    wrong = json.loads(json.dumps(new))
    wrong["experiment_seeds"]["fresh"] = [0, 1]  # the metrics say 3, 4
    with pytest.raises(AssertionError, match="'fresh/acc' has seeds"):
        validate_result(wrong)
    stray = json.loads(json.dumps(new))
    stray["metrics"]["twice_gap"]["per_seed"]["9"] = 1.0
    with pytest.raises(AssertionError, match="no experiment ran"):
        validate_result(stray)
    claim = json.loads(json.dumps(new))
    claim["claims"][1]["seeds"] = [0, 1]
    with pytest.raises(AssertionError, match="fresh-high"):
        validate_result(claim)


@pytest.mark.parametrize(
    "seeds, message",
    [
        ({"huge": (1,)}, "unknown scales"),
        ({"cpu": ()}, "is empty"),
        ({"cpu": (1, 1)}, "distinct"),
        ({"cpu": (-1,)}, "non-negative"),
        ({"cpu": (True,)}, "non-negative"),
        ({"cpu": "012"}, "list or tuple"),
        ((3, 4, 5), "map a scale"),
    ],
)
def test_bad_seed_lists_fail_at_declaration(seeds, message):
    with pytest.raises(ValueError, match=message):
        Experiment("e", score, {"cpu": {}}, seeds=seeds)

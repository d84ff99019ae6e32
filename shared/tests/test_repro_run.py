"""The run contract end to end, in-process, on a toy experiment."""

import json
import os
import stat

import pytest
import torch

from xentlab.repro import Claim, Derived, Experiment, Paper, difference, run_cli

PAPER = Paper(title="Toy", package="toy", arxiv="0000.00000")
CALLS: list[tuple[str, int]] = []
FAIL_ON: set[tuple[str, int]] = set()


def fit(cfg, seed, ctx):
    CALLS.append((ctx.experiment, seed))
    if (ctx.experiment, seed) in FAIL_ON:
        raise KeyboardInterrupt  # a run killed midway
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, generator=g) * cfg["scale"] + torch.randn(3)  # also uses the global (seeded) RNG
    for step in range(3):
        ctx.log(step=step, loss=float(w.sum()) / (step + 1))
    return {"score": float(w.abs().mean()), "ok": True, "curve": w.tolist()}


EXPS = [
    Experiment("a", fit, {"smoke": {"scale": 1.0}, "cpu": {"scale": 1.0}}),
    Experiment("b", fit, {"smoke": {"scale": 0.1}, "cpu": {"scale": 0.1}}),
]
CLAIMS = [
    Claim("pos", "score is positive", "a/score", "> 0"),
    Claim("all-ok", "ok everywhere", "a/ok", agg="all"),
    Claim("gap", "a beats b", "gap", "> 100"),
]
DERIVED = [Derived("gap", lambda m: m["a/score"] - m["b/score"])]


def run(out, *args):
    CALLS.clear()
    return run_cli(
        PAPER,
        EXPS,
        CLAIMS,
        derived=DERIVED,
        argv=["--out", str(out), "--quiet", *args],
        package_dir=out.parent,
    )


def test_writes_result_report_and_logs(tmp_path):
    r = run(tmp_path / "r", "--scale", "smoke", "--seeds", "0", "1")
    out = tmp_path / "r"
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["metrics"] == json.loads(json.dumps(r["metrics"]))
    assert set(on_disk["metrics"]) == {"a/score", "a/ok", "b/score", "b/ok", "gap"}
    assert on_disk["metrics"]["a/score"]["n"] == 2
    assert [c["verdict"] for c in on_disk["claims"]] == ["holds", "holds", "fails"]
    for key in (
        "paper",
        "package",
        "scale",
        "seeds",
        "config",
        "wall_time_s",
        "peak_memory_mb",
        "environment",
    ):
        assert key in on_disk
    assert on_disk["environment"]["torch"] == torch.__version__
    report = (out / "report.md").read_text()
    assert "| `gap` |" in report and "fails" in report
    # the headline gives CPU time first, as the ledger does, and the summed unit wall time beside it
    assert (
        f"Compute: {on_disk['cpu_time_s']:.0f} CPU-s (summed unit wall time {on_disk['wall_time_s']:.0f} s;"
        in report
    )
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(logs) == 2 * 2 * 3 and {row["experiment"] for row in logs} == {"a", "b"}


def test_same_seeds_same_metrics(tmp_path):
    r1 = run(tmp_path / "one", "--scale", "smoke", "--seeds", "3")
    r2 = run(tmp_path / "two", "--scale", "smoke", "--seeds", "3")
    assert r1["metrics"] == r2["metrics"]


def test_killed_run_resumes_and_matches(tmp_path):
    reference = run(tmp_path / "ref", "--scale", "smoke", "--seeds", "0", "1")
    FAIL_ON.add(("b", 0))
    try:
        with pytest.raises(SystemExit) as exc:
            run(tmp_path / "r", "--scale", "smoke", "--seeds", "0", "1")
        assert exc.value.code == 130
    finally:
        FAIL_ON.clear()
    assert not (tmp_path / "r" / "result.json").exists()
    resumed = run(tmp_path / "r", "--scale", "smoke", "--seeds", "0", "1")
    assert ("a", 0) not in CALLS and ("a", 1) not in CALLS  # finished units were kept
    assert ("b", 0) in CALLS
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["units"] == {"computed": 2, "reused": 2}


def test_changed_config_recomputes(tmp_path):
    run(tmp_path / "r", "--scale", "smoke", "--seeds", "0")
    run(tmp_path / "r", "--scale", "smoke", "--seeds", "0", "--fresh")
    assert len(CALLS) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "huge"], "invalid choice"),
        (["--seeds", "-1"], "non-negative"),
        (["--seeds", "1", "1"], "distinct"),
        (["--scale", "full"], "no experiment at scale"),
        (["--workers", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_line_and_keeps_results(tmp_path, capsys, args, message):
    out = tmp_path / "r"
    run(out, "--scale", "smoke", "--seeds", "0")
    before = (out / "result.json").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run(out, *args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert (out / "result.json").read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_is_a_clear_error(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(SystemExit) as exc:
        run(locked / "out", "--scale", "smoke")
    assert exc.value.code == 2
    assert "cannot write" in capsys.readouterr().err


def test_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        run(f, "--scale", "smoke")
    assert exc.value.code == 2
    assert "not a directory" in capsys.readouterr().err
    assert f.read_text() == "keep me"


def test_check_flag_exits_one_when_a_claim_does_not_hold(tmp_path):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path / "r", "--scale", "smoke", "--seeds", "0", "--check")
    assert exc.value.code == 1
    assert (tmp_path / "r" / "result.json").exists()  # results are still written


def test_out_under_an_unwritable_root_is_a_clear_error(tmp_path, capsys):
    from pathlib import Path

    with pytest.raises(SystemExit) as exc:
        run_cli(
            PAPER,
            EXPS,
            CLAIMS,
            argv=["--out", "/proc/xentlab-no/out", "--scale", "smoke"],
            package_dir=Path(tmp_path),
        )
    assert exc.value.code == 2
    assert "cannot write to --out" in capsys.readouterr().err


def test_claims_and_derived_restricted_to_scales(tmp_path):
    claims = [*CLAIMS, Claim("cpu-only", "judged at cpu only", "a/score", "> 0", scales=("cpu",))]
    derived = [*DERIVED, Derived("cpu_gap", lambda m: 1.0, scales=("cpu",))]
    r = run_cli(
        PAPER,
        EXPS,
        claims,
        derived=derived,
        package_dir=tmp_path,
        argv=["--out", str(tmp_path / "r"), "--quiet", "--scale", "smoke", "--seeds", "0"],
    )
    assert "cpu-only" not in [c["id"] for c in r["claims"]]
    assert "cpu_gap" not in r["metrics"]
    r = run_cli(
        PAPER,
        EXPS,
        claims,
        derived=derived,
        package_dir=tmp_path,
        argv=["--out", str(tmp_path / "c"), "--quiet", "--scale", "cpu", "--seeds", "0"],
    )
    assert "cpu-only" in [c["id"] for c in r["claims"]] and "cpu_gap" in r["metrics"]
    with pytest.raises(ValueError, match="unknown scales"):
        Claim("x", "s", "a/score", "> 0", scales=("huge",))


def test_default_workers_per_scale(tmp_path, monkeypatch):
    import xentlab.repro.cli as cli

    seen = []
    real = cli.run_experiments

    def spy(*args, **kwargs):
        seen.append(kwargs["workers"])
        return real(*args, **{**kwargs, "workers": 1})

    monkeypatch.setattr(cli, "run_experiments", spy)
    per_scale = {"cpu": 2, "smoke": 1}
    for scale, extra in (("smoke", []), ("cpu", []), ("cpu", ["--workers", "1"])):
        run_cli(
            PAPER,
            EXPS,
            CLAIMS,
            derived=DERIVED,
            default_workers=per_scale,
            package_dir=tmp_path,
            argv=[
                "--out",
                str(tmp_path / f"w{len(seen)}"),
                "--quiet",
                "--scale",
                scale,
                "--seeds",
                "0",
                *extra,
            ],
        )
    assert seen == [1, 2, 1]  # the scale's default, unless --workers is given


def test_difference_is_the_scaled_paired_gap():
    # 100 * (0.75 - 0.5) = 25 points; missing names raise, like any Derived function reading m
    fn = difference("a/acc", "b/acc", scale=100.0)
    assert fn({"a/acc": 0.75, "b/acc": 0.5}) == 25.0
    assert difference("a/x", "b/x")({"a/x": 1.0, "b/x": 3.0}) == -2.0
    with pytest.raises(KeyError):
        fn({"a/acc": 0.75})


def reads_local(cfg, seed, ctx):
    from xentlab.repro.local_data import local_path

    CALLS.append((ctx.experiment, seed))
    path = local_path(cfg, "data_root", "TOY_DATA_ROOT", needs="a folder with data.txt")
    return {"value": float((path / "data.txt").read_text())}


def test_a_unit_is_recomputed_when_its_local_input_points_elsewhere(tmp_path, monkeypatch, capsys):
    # The unit key hashes the config, not what $TOY_DATA_ROOT points to: without the recorded inputs,
    # pointing the variable at another dataset would silently reuse the old dataset's numbers.
    for name, value in (("d1", "1.5"), ("d2", "2.5")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.txt").write_text(value)
    exps = [Experiment("x", reads_local, {"smoke": {"n": 1}})]

    def go():
        CALLS.clear()
        run_cli(PAPER, exps, [], argv=["--out", str(tmp_path / "r"), "--quiet", "--scale", "smoke", "--seeds", "0"],
                package_dir=tmp_path)  # fmt: skip
        return json.loads((tmp_path / "r" / "result.json").read_text())["metrics"]["x/value"]["mean"]

    monkeypatch.setenv("TOY_DATA_ROOT", str(tmp_path / "d1"))
    assert go() == 1.5 and CALLS == [("x", 0)]
    unit = json.loads((tmp_path / "r" / "units" / "x" / "seed0.json").read_text())
    assert unit["local_inputs"] == {"data_root|TOY_DATA_ROOT": str(tmp_path / "d1")}
    assert go() == 1.5 and CALLS == []  # same input: resumed
    monkeypatch.setenv("TOY_DATA_ROOT", str(tmp_path / "d2"))
    capsys.readouterr()
    assert go() == 2.5 and CALLS == [("x", 0)]  # moved input: recomputed, and said so
    assert "TOY_DATA_ROOT" in capsys.readouterr().out


def test_units_that_read_no_local_input_carry_no_local_inputs_field(tmp_path):
    run(tmp_path / "r", "--scale", "smoke", "--seeds", "0")
    unit = json.loads((tmp_path / "r" / "units" / "a" / "seed0.json").read_text())
    assert "local_inputs" not in unit

"""scripts/tune_base.py: its grid, pool and rule are the README's, and it trains through reproduce.py's code path."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

PKG = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("repri_tune_base", PKG / "scripts" / "tune_base.py")
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_grid_is_the_readmes_list():
    # README "Third run": 16 x 1600 26.8% (train 35.4%, 126 s); width 64, 16 x 1200 23.7% (121 s);
    # 8 x 3200 32.6% (train 40.7%, 138 s); 4 x 5600 32.3% (141 s); 8 x 3000 at lr 8e-3 26.3%, at lr 2e-3 28.9%
    expected = {
        "b16x1600": ((16, 1600, 4e-3, 48), 26.8, 35.4, 126),
        "w64_b16x1200": ((16, 1200, 4e-3, 64), 23.7, None, 121),
        "b8x3200": ((8, 3200, 4e-3, 48), 32.6, 40.7, 138),
        "b4x5600": ((4, 5600, 4e-3, 48), 32.3, None, 141),
        "b8x3000_lr8e-3": ((8, 3000, 8e-3, 48), 26.3, None, None),
        "b8x3000_lr2e-3": ((8, 3000, 2e-3, 48), 28.9, None, None),
    }
    assert [g["name"] for g in tb.GRID] == list(expected)
    cpu = tb.load_reproduce().CPU
    for g in tb.GRID:
        cfg = tb.setting_config(g["overrides"])
        assert (cfg.batch_size, cfg.steps, cfg.lr, cfg.width) == expected[g["name"]][0]
        assert (g["readme_val"], g["readme_train"], g["readme_cpu_s"]) == expected[g["name"]][1:]
        # only the listed fields differ from reproduce.py's cpu config (plus the fold)
        changed = {k for k, v in dataclasses.asdict(cfg).items() if cpu.get(k) != v and k != "fold"}
        assert changed == {k for k in g["overrides"] if g["overrides"][k] != cpu[k]}
        assert cfg.fold == 0
    readme = (PKG / "README.md").read_text()
    for g in tb.GRID:
        assert f"{g['readme_val']}%" in readme


def test_committed_setting_is_reproduce_cpu():
    cpu = tb.load_reproduce().CPU
    committed = next(g for g in tb.GRID if g["name"] == tb.COMMITTED)
    assert tb.setting_config(committed["overrides"]) == tb.setting_config({}) and cpu["fold"] is None
    assert (cpu["batch_size"], cpu["steps"], cpu["lr"]) == (8, 3200, 4e-3)


def test_protocol_constants():
    assert (tb.FOLD, tb.SEED, tb.VAL_SEED, tb.VAL_N) == (0, 0, 2, 400)
    assert tb.TARGET_VAL_MIOU == 30.0
    assert tb.BUDGET_CPU_S == pytest.approx(528.0)  # 8 CPU-minutes + 10%
    assert tb.RUN3_CPU_S == 469.0


def test_validation_pool_refuses_train_and_test_seeds():
    cfg = tb.setting_config({})
    for seed in (cfg.train_data_seed, cfg.test_data_seed):
        with pytest.raises(ValueError, match="train .* or test"):
            tb.validation_pool(cfg, n=2, seed=seed)


def _row(name, val, est):
    return {"name": name, "val_miou": val, "est_run_cpu_s": est}


def test_rule_highest_qualifying_val():
    rows = [_row("a", 32.6, 469), _row("b", 32.3, 478), _row("c", 29.9, 300), _row("d", 40.0, 600)]
    # d is best but over budget, c is cheap but under target: a has the highest qualifying mIoU
    assert tb.choose(rows) == "a"
    assert tb.choose(rows, budget=700) == "d"
    assert tb.choose([_row("a", 30.0, 528.0)]) == "a"  # both bounds inclusive
    assert tb.choose([_row("a", 31.0, 500), _row("b", 31.0, 450)]) == "b"  # tie -> cheaper
    assert tb.choose([_row("a", 29.9, 100), _row("b", 35.0, 529)]) is None  # no fallback


def test_budget_estimate_anchored_at_run3():
    est = tb.estimated_run_cpu_s({"b8x3200": 0.05 * 3200, "b4x5600": 0.03 * 5600})
    assert est["b8x3200"] == pytest.approx(469.0)
    assert est["b4x5600"] == pytest.approx(469.0 * 168 / 160)


def test_training_is_reproduce_runs(tmp_path):
    """Tiny smoke: the script's training of a config gives the same loss curve as experiment.run (the cpu
    unit's path) for the same config and seed, and finite validation / train mIoUs."""
    from repri.experiment import RunConfig, run

    smoke = tb.load_reproduce().SMOKE
    cfg = tb.setting_config({"steps": 3, "n_train": 40}, base=smoke)
    row = tb.train_setting(cfg, seed=0, val_n=60)
    ref = run(RunConfig(**{**dataclasses.asdict(cfg), "n_test": 30, "episodes": 2, "eval_batch": 2,
                           "adapt_iter": 2, "arm_names": ("init",), "shots": (1,)}), seed=0)  # fmt: skip
    assert row["train_curve"] == ref["train_curve"]
    assert 0.0 <= row["val_miou"] <= 100.0 and 0.0 <= row["train_miou"] <= 100.0


def test_tuning_key_ignores_the_few_shot_settings():
    """The rows' config / cache key is the base-tuning part of the config only: a new arm (the fifth cpu run added
    oracle_official to arm_names) or other few-shot settings keep the finished rows; base-training settings do not."""
    from repri.experiment import FIELDS

    cfg = tb.setting_config({})
    key = tb.tuning_config(cfg)
    assert set(key) == tb.TUNING_FIELDS <= FIELDS
    few_shot = dict(arm_names=("init", "ce", "ce_h", "repri", "oracle"), episodes=7, shots=(1,), eval_batch=3,
                    adapt_iter=5, oracle_official_iter=9, n_test=10)  # fmt: skip
    assert set(few_shot) == FIELDS - tb.TUNING_FIELDS  # every field outside the key is a few-shot one
    assert tb.tuning_config(dataclasses.replace(cfg, **few_shot)) == key
    # a row written before the key was narrowed carries the whole config (tuples as lists): still a hit
    assert tb.tuning_config(json.loads(json.dumps(dataclasses.asdict(cfg)))) == key
    # min_pixels: from protocol v4 it filters the base-training pool (official process_image), so it is in the key
    for change in (dict(steps=3201), dict(lr=2e-3), dict(width=64), dict(fold=1), dict(bg_weight=1.0),
                   dict(object_scale=(0.4, 0.65)), dict(train_data_seed=5), dict(min_pixels=1)):  # fmt: skip
        assert tb.tuning_config(dataclasses.replace(cfg, **change)) != key, change
    with pytest.raises(ValueError, match="base-tuning fields"):
        tb.tuning_config({"steps": 3200})


def test_committed_rows_match_the_grid():
    """results/base_tuning.json's rows carry the base-tuning config of today's grid (so they are still this
    script's results) and no few-shot settings such as the arm list."""
    out = json.loads((PKG / "results" / "base_tuning.json").read_text())
    assert [r["name"] for r in out["rows"]] == [g["name"] for g in tb.GRID]
    for row, g in zip(out["rows"], tb.GRID):
        assert row["config"] == tb.tuning_config(tb.setting_config(g["overrides"])), g["name"]
    assert "arm_names" not in json.dumps(out)


class _Recorder:
    """A RunConfig stand-in that records which fields are read."""

    def __init__(self, cfg):
        self._cfg, self.read = cfg, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._cfg, name)


def test_base_tuning_reads_only_the_key_fields():
    smoke = tb.load_reproduce().SMOKE
    cfg = _Recorder(tb.setting_config({"steps": 2, "n_train": 24}, base=smoke))
    tb.train_setting(cfg, seed=0, val_n=12)
    assert cfg.read and cfg.read <= tb.TUNING_FIELDS, sorted(cfg.read - tb.TUNING_FIELDS)


def test_rows_are_kept_in_the_xentlab_cache(tmp_path, monkeypatch):
    # the finished runs outlive the session (they were in $TMPDIR before the second fidelity audit)
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path / "cache"))
    path = tb.default_rows_dir()
    assert path == tmp_path / "cache" / "repri" / "tune_base" and path.is_dir()


def test_cached_row_reuses_only_rows_of_the_current_tuning_config(tmp_path):
    cfg = tb.setting_config({})
    key = tb.tuning_config(cfg)
    path = tmp_path / "row.json"
    assert tb.cached_row(path, cfg) is None  # nothing stored
    path.write_text(json.dumps({"name": "x", "config": key, "val_miou": 30.0}))
    assert tb.cached_row(path, cfg) == {"name": "x", "config": key, "val_miou": 30.0}
    # a row of the whole (pre-narrowing) config is still a hit, returned with the narrowed config
    whole = json.loads(json.dumps(dataclasses.asdict(cfg)))
    path.write_text(json.dumps({"name": "x", "config": whole, "val_miou": 30.0}))
    assert tb.cached_row(path, cfg)["config"] == key
    # another base-tuning setting is a miss
    assert tb.cached_row(path, dataclasses.replace(cfg, lr=2e-3)) is None
    # a row written before min_pixels joined the key (protocol v4) is stale, even with equal other fields
    old = {k: v for k, v in key.items() if k != "min_pixels"}
    path.write_text(json.dumps({"name": "x", "config": old, "val_miou": 30.0}))
    assert tb.cached_row(path, cfg) is None

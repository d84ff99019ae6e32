"""The smoke run end to end (in-process): every arm reports a finite mIoU for 1 and 5 shots."""

from pathlib import Path

import pytest

from xentlab.testing import run_smoke


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XENTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "xentlab-cache"))


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path)
    metrics = result["metrics"]
    for shots in (1, 5):
        for arm in ("init", "ce", "ce_h", "repri", "oracle", "oracle_official"):
            value = metrics[f"fewshot/miou_{shots}shot_{arm}"]["mean"]
            assert 0.0 <= value <= 100.0
    assert "gain/repri_vs_ce_5shot_minus_1shot" in metrics
    # the oracle claims read the official oracle.sh arm (fifth cpu run on); the test.sh-schedule gain is reported
    for shots in (1, 5):
        assert f"gain/oracle_official_vs_repri_{shots}shot" in metrics
        assert f"gain/oracle_vs_repri_{shots}shot" in metrics
    # the base-class mIoU is measured on the test pool and named so (it was misnamed base_val_miou)
    assert 0.0 <= metrics["fewshot/base_test_miou"]["mean"] <= 100.0
    assert not any("base_val" in k for k in metrics)


def test_oracle_claims_read_the_official_oracle_arm():
    """Protocol of the fifth cpu run: the cpu scale runs oracle_official and the oracle claims read it."""
    from xentlab.testing import load_reproduce

    mod = load_reproduce(Path(__file__).parents[1] / "reproduce.py")
    assert "oracle_official" in mod.CPU["arm_names"] and "oracle" in mod.CPU["arm_names"]
    claims = {c.id: c for c in mod.CLAIMS}
    for shots in (1, 5):
        claim = claims[f"oracle-beats-repri-{shots}shot"]
        assert claim.metric == f"gain/oracle_official_vs_repri_{shots}shot" and claim.check == "> 0"

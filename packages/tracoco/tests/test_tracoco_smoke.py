"""reproduce.py --scale smoke runs end to end and writes a valid result.json."""

from pathlib import Path

from xentlab.testing import run_smoke


def test_smoke(tmp_path):
    result = run_smoke(Path(__file__).parents[1] / "reproduce.py", tmp_path, extra_args=("--workers", "1"))
    assert set(result["config"]) == {"supervised", "supervised_all", "tracoco", "no_tc", "tracoco_class_kl"}
    assert {"tracoco/dice", "supervised/hd95", "gain/tracoco_vs_supervised", "gain/all_vs_supervised"} <= set(
        result["metrics"]
    )
    assert (tmp_path / "test_slice.png").is_file() and (tmp_path / "dice_by_method.png").is_file()

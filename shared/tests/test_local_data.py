"""xentlab.repro.local_data: full-scale inputs come from a config key or an environment variable."""

import pytest

from xentlab.repro import ReproError
from xentlab.repro.local_data import MissingLocalData, local_path


def test_config_key_wins_over_the_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.setenv("X_ROOT", str(tmp_path / "b"))
    assert local_path({"root": str(tmp_path / "a")}, "root", "X_ROOT", needs="data") == tmp_path / "a"


def test_environment_is_the_fallback_and_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("X_ROOT", "~/data")
    assert local_path({"root": None}, "root", "X_ROOT", needs="data") == tmp_path / "data"


def test_unset_is_a_one_line_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("X_ROOT", raising=False)
    with pytest.raises(
        MissingLocalData, match=r"set X_ROOT to a folder of CIFAR\. Nothing is downloaded"
    ) as e:
        local_path({}, "root", "X_ROOT", needs="a folder of CIFAR")
    # both a CLI error (printed on one line) and a FileNotFoundError for callers that catch that
    assert isinstance(e.value, ReproError) and isinstance(e.value, FileNotFoundError)
    assert local_path({}, "root", "X_ROOT", needs="x", required=False) is None


def test_a_path_that_is_not_there(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    with pytest.raises(MissingLocalData, match="does not exist"):
        local_path({"root": str(missing)}, "root", "X_ROOT", needs="x")
    assert local_path({"root": str(missing)}, "root", "X_ROOT", needs="x", must_exist=False) == missing

import pytest
import torch

from xentlab.testing import assert_close, check_gradients, default_tolerance


def test_assert_close_passes_within_tolerance():
    assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7], dtype=torch.float64))


def test_assert_close_report_names_the_worst_elements():
    a = torch.zeros(10, 10)
    e = torch.zeros(10, 10, dtype=torch.float64)
    a[3, 7] = 0.5
    a[1, 2] = 0.1
    with pytest.raises(AssertionError) as exc:
        assert_close(a, e, name="logits")
    msg = str(exc.value)
    assert msg.startswith("logits: 2/100 elements")
    assert msg.index("(3, 7)") < msg.index("(1, 2)")  # worst first
    assert "max abs err 0.5" in msg


def test_assert_close_nan_and_shape():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.zeros(2), torch.zeros(3))
    with pytest.raises(AssertionError):
        assert_close(torch.tensor([float("nan")]), torch.tensor([0.0]))
    assert_close(torch.tensor([float("inf")]), torch.tensor([float("inf")]))


def test_dtype_tolerances_loosen_with_precision():
    assert (
        default_tolerance(torch.bfloat16)[0]
        > default_tolerance(torch.float16)[0]
        > default_tolerance(torch.float32)[0]
    )
    assert default_tolerance(torch.int64) == (0.0, 0.0)


def test_check_gradients_catches_a_wrong_backward():
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x**2

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 x g

    assert check_gradients(lambda x: (x**3).sum(), torch.randn(4))
    with pytest.raises(Exception, match="Jacobian mismatch"):
        check_gradients(Wrong.apply, torch.randn(4) + 2)
    with pytest.raises(ValueError):
        check_gradients(lambda i: i, torch.tensor([1, 2]))


def test_load_reproduce_gives_fresh_modules_and_a_clear_error(tmp_path):
    from xentlab.testing import load_reproduce

    script = tmp_path / "my-pkg" / "reproduce.py"
    script.parent.mkdir()
    script.write_text(
        "CONFIG = {'lr': 1}\nif __name__ == '__main__':\n    raise SystemExit('ran as a script')\n"
    )
    a, b = load_reproduce(script), load_reproduce(script)
    assert a.CONFIG == {"lr": 1} and a is not b  # the __main__ block did not run; each load is its own
    a.CONFIG["lr"] = 2
    assert b.CONFIG["lr"] == 1  # a test that patches one load leaves the next untouched
    with pytest.raises(FileNotFoundError, match="no reproduce.py"):
        load_reproduce(tmp_path / "missing" / "reproduce.py")

"""xentlab.plotting: headless pyplot, atomic figure saves that always close the figure."""

import pytest

from xentlab.plotting import pyplot, save_figure


def test_pyplot_is_headless():
    plt = pyplot()
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"
    assert hasattr(plt, "subplots")


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_writes_the_format_of_the_suffix_and_closes(tmp_path, suffix, magic):
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / f"curve{suffix}", dpi=50)
    assert path == tmp_path / "sub" / f"curve{suffix}"
    assert path.read_bytes().startswith(magic)
    assert fig.number not in plt.get_fignums()
    # nothing but the figure itself: the temp file of the atomic write is gone
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_dpi_sets_the_pixel_size(tmp_path):
    plt = pyplot()
    from matplotlib.image import imread

    sizes = []
    for dpi in (50, 100):
        fig = plt.figure(figsize=(2, 1))
        sizes.append(imread(save_figure(fig, tmp_path / f"f{dpi}.png", dpi=dpi, tight=False)).shape[:2])
    assert sizes == [(50, 100), (100, 200)]


def test_failed_render_leaves_no_file_and_closes_the_figure(tmp_path):
    plt = pyplot()
    fig = plt.figure()
    with pytest.raises(TypeError, match="not_a_savefig_option"):
        save_figure(fig, tmp_path / "bad.png", not_a_savefig_option=1)
    assert fig.number not in plt.get_fignums()
    assert list(tmp_path.iterdir()) == []


def test_path_without_suffix_is_a_clear_error(tmp_path):
    fig = pyplot().figure()
    with pytest.raises(ValueError, match="no suffix"):
        save_figure(fig, tmp_path / "figure")

"""Figure files (savefig, save_rendered) are deterministic and metadata-free; drawings render alike anywhere."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from topogen.experiments import plots as plotting  # noqa: E402
from topogen.experiments.clouds import circle  # noqa: E402
from topogen.persistence import vr_persistence  # noqa: E402
from topogen.reproduce import figures  # noqa: E402


def _figure():
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))
    plotting.plot_cloud(circle(20), axes[0])
    plotting.plot_diagram(vr_persistence(circle(20)), axes[1], title="diagram")
    return fig


def test_savefig_is_byte_identical_and_stripped(tmp_path):
    a = figures.savefig(_figure(), "01_test", figures_dir=tmp_path / "a")
    b = figures.savefig(_figure(), "01_test.png", figures_dir=tmp_path / "b")
    assert a.name == b.name == "01_test.png"
    assert a.read_bytes() == b.read_bytes()
    info = Image.open(a).info
    assert "Software" not in info and not any("matplotlib" in str(v).lower() for v in info.values())
    assert oct(a.stat().st_mode & 0o777) == "0o644"


def test_savefig_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_FIGURES_DIR", str(tmp_path / "env"))
    path = figures.savefig(_figure(), "02_env")
    assert path.parent == tmp_path / "env"


def test_bad_figure_names(tmp_path):
    for name in ["", "../escape", "a/b"]:
        with pytest.raises(ValueError, match="plain file name"):
            figures.savefig(_figure(), name, figures_dir=tmp_path)


def test_gif_animation_is_deterministic(tmp_path):
    clouds = [circle(12).numpy() * s for s in (1.0, 1.5, 2.0)]
    a = figures.save_rendered(plotting.animation_gif(clouds, [0, 5, 10], target=circle(12)), "01_anim.gif",
                              figures_dir=tmp_path / "a")
    b = figures.save_rendered(plotting.animation_gif(clouds, [0, 5, 10], target=circle(12)), "01_anim.gif",
                              figures_dir=tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    gif = Image.open(a)
    assert gif.format == "GIF" and gif.n_frames == 3
    with pytest.raises(ValueError, match="at least one frame"):
        figures.gif_bytes([], 80, 10, 128)


def test_mean_ci_band_widths():
    fig, ax = plt.subplots()
    values = np.array([[1.0, 2.0], [3.0, 2.0]])
    plotting.mean_ci_band(ax, [0, 1], values, "x")
    poly = ax.collections[0].get_paths()[0].vertices
    # t(0.975, 1) * std / sqrt(2) = 12.706 * 1.414 / 1.414
    assert poly[:, 1].max() == pytest.approx(2.0 + 12.7062, abs=1e-3)
    plt.close(fig)



@pytest.mark.parametrize("steps, asked, window", [(40, 10, 10), (40, 7, 7), (6, 10, 6)])  # a run shorter than asked
def test_gradient_path_is_the_moving_share_of_seeds_with_a_gradient(steps, asked, window):
    from types import SimpleNamespace

    from matplotlib.colors import same_color

    flags = np.random.default_rng(0).random((3, 2, steps)) < 0.4  # seed x model x step
    runs = [{m: SimpleNamespace(topo_grad=flags[s, j]) for j, m in enumerate("ab")} for s in range(3)]
    fig = plotting.gradient_path_figure(runs, ["a", "b"], window=asked, title="t", caption="c")
    ax = fig.axes[0]
    for j, line in enumerate(ax.get_lines()):
        share = flags[:, j].mean(0)  # the share of seeds, then a centred mean of `window` steps, zero beyond the ends
        ends = [i + (window - 1) // 2 for i in range(steps)]
        expected = [share[max(0, e - window + 1):e + 1].sum() / window for e in ends]
        np.testing.assert_allclose(line.get_ydata(), expected, atol=1e-15)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, steps + 1))
        assert same_color(line.get_color(), f"C{j + 1}")  # C0 is the VAE's
    assert ax.get_ylabel().endswith(f"({window}-step moving average)")
    plt.close(fig)

def test_animations_rendered_in_workers_are_the_same_bytes(tmp_path):
    from topogen.experiments.clouds import sphere
    from topogen.reproduce.sweep import run_sweep

    flat = [circle(12).numpy() * s for s in (1.0, 1.5, 2.0)]
    solid = [sphere(20).numpy() * s for s in (1.0, 1.2)]
    units = [dict(clouds=flat, steps=[0, 5, 10], target=circle(12).numpy(), title="flat"),
             dict(clouds=solid, steps=[0, 7], title="solid")]
    here = [plotting.animation_gif(u["clouds"], u["steps"], target=u.get("target"), title=u["title"]) for u in units]
    rendered = run_sweep(plotting.animation_gif, units, n_jobs=2, cache=False)
    assert rendered == here
    path = figures.save_rendered(rendered[1], "anim1.gif", figures_dir=tmp_path)
    assert path.read_bytes() == here[1] and Image.open(path).n_frames == 2
    bad = ((rendered[0], "no_suffix"), (rendered[0], "x.jpg"), ("text", "x.gif"), (rendered[0], "../x.gif"))
    for data, name in bad:
        with pytest.raises(ValueError):
            figures.save_rendered(data, name, figures_dir=tmp_path)


def test_committed_figures_are_readable_at_githubs_width():
    """GitHub shows a README image at most about 880 px wide: no committed figure is wider than 3.2 : 1."""
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "figures").glob("*.png")):
        width, height = Image.open(path).size
        assert width / height <= 3.2, f"{path.name} is {width} × {height} ({width / height:.1f} : 1)"

"""Figures (PNG + SVG) and the free-viewpoint clip writer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_synthetic_lightfield
from lfcomp.anchors.video import anchor
from lfcomp.codecs import registry
from lfcomp.codecs.registry import QDLR, RateParameter
from lfcomp.errors import LfcompError
from lfcomp.evaluation import plots
from lfcomp.evaluation.metrics import distortion_metrics
from lfcomp.evaluation.plots import (
    make_figures,
    mean_error_map,
    plot_error_maps,
    plot_rd,
    plot_view_psnr,
    rd_style,
    similar_rate_points,
    write_clip,
)
from lfcomp.evaluation.results import RatePoint
from lfcomp.io.lightfield import LightField, write_lightfield

pytest.importorskip("matplotlib")


def _check_figure(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()[:2000]
    assert not list(stem.parent.glob(".*partial*"))


def _point(codec, rate_point, bpp, psnr):
    entry = None if codec.startswith(("hevc", "av1")) else QDLR
    return RatePoint(scene="scene", codec=codec, rate_point=rate_point, rate={}, bytes=0, bits=0, bpp=bpp,
                     psnr_rgb=psnr, psnr_y=psnr + 1, path=Path("metrics.json"), entry=entry)


def test_nothing_to_plot_is_a_clean_error(tmp_path):
    with pytest.raises(LfcompError, match="no rate points"):
        plot_rd([], tmp_path / "empty")
    with pytest.raises(LfcompError, match="no decoded light fields"):
        plot_error_maps(np.zeros((1, 1, 2, 2, 3), np.uint8), {}, tmp_path / "empty")
    assert not list(tmp_path.iterdir())


def test_view_psnr_plot_takes_grids_with_missing_values(tmp_path):
    ours = np.full((3, 4), 38.0)
    hevc = [[40.0, 39.0, 38.0, 37.5], [37.0, 36.5, 36.0, None], [35.0, 35.0, 34.0, 34.0]]  # None: lossless view
    paths = plot_view_psnr({"qdlr-nerf": ours, "hevc444": hevc}, tmp_path / "views", scan="spiral")
    _check_figure(paths, tmp_path / "views")
    with pytest.raises(LfcompError, match="one shape"):
        plot_view_psnr({"a": np.zeros((3, 3)), "b": np.zeros((2, 3))}, tmp_path / "bad")


def test_error_map_is_the_mean_absolute_error_over_views_and_channels():
    reference = np.zeros((2, 2, 4, 5, 3), np.uint8)
    decoded = reference.copy()
    decoded[0, 0, 1, 2] = (3, 6, 9)  # one pixel of one view: mean over channels 6, over 4 views 1.5
    decoded[1, 1, :, :, 0] = 12  # one view, one channel: 4 everywhere, 1 after averaging over views
    expected = np.full((4, 5), 1.0)
    expected[1, 2] += 1.5
    np.testing.assert_allclose(mean_error_map(reference, decoded), expected)


def test_similar_rate_points_match_the_reference_codec():
    points = [_point("hevc444", f"qp{q}", b, 30) for q, b in [(22, 0.1), (32, 0.03), (42, 0.01)]]
    points += [_point("qdlr-nerf", r, b, 35) for r, b in [("a", 0.012), ("b", 0.02), ("c", 0.09)]]
    chosen = similar_rate_points(points, "qdlr-nerf")
    assert chosen["qdlr-nerf"].rate_point == "b" and chosen["hevc444"].rate_point == "qp32"  # log scale
    chosen = similar_rate_points(points, "qdlr-nerf", target_bpp=0.1)
    assert chosen["qdlr-nerf"].rate_point == "c" and chosen["hevc444"].rate_point == "qp22"
    with pytest.raises(LfcompError, match="no rate points of the reference codec"):
        similar_rate_points(points, "av1420")


def test_make_figures_from_anchor_and_neural_metrics(tmp_path):
    views = make_synthetic_lightfield(3, 3, 96, 96, seed=5)
    reference = tmp_path / "lf.zarr"
    write_lightfield(LightField(views), reference)
    results = tmp_path / "results" / "scene"
    metrics = [results / label / f"qp{qp}" / "metrics.json" for label in ("hevc444", "hevc420") for qp in (26, 38)]
    for path in metrics:
        anchor(reference, path.parent, codec="hevc", chroma=path.parts[-3][-3:], qp=int(path.parts[-2][2:]))
    # A stand-in for the neural codec's output (its metrics have the same keys).
    noisy = np.clip(views + np.random.default_rng(0).normal(0, 3, views.shape), 0, 255).astype(np.uint8)
    neural_dir = results / "nerf" / "r8" / "n32"
    write_lightfield(LightField(noisy), neural_dir / "decoded.zarr")
    neural = {"reference": str(reference), "decoded": str(neural_dir / "decoded.zarr"),
              **distortion_metrics(views, noisy), "bytes": 900, "bits": 7200, "bpp": 7200 / views[..., 0].size,
              "rate_point": {"rank": 8, "centroids": 32}, "model_kind": "nerf"}
    (neural_dir / "metrics.json").write_text(json.dumps(neural))
    metrics.append(neural_dir / "metrics.json")
    out = tmp_path / "figures"
    written = make_figures(metrics, out)  # also covers plot_rd and plot_error_maps
    for stem in ("rd_scene", "view_psnr_scene", "error_maps_scene"):
        _check_figure([out / f"{stem}.png", out / f"{stem}.svg"], out / stem)
    assert sorted(p.name for p in written) == sorted(f"{kind}_scene.{fmt}" for kind in ("rd", "view_psnr", "error_maps")
                                                     for fmt in ("png", "svg"))
    svg = (out / "error_maps_scene.svg").read_text()
    assert "qdlr-nerf r8-n32" in svg and "hevc444 qp" in svg and "hevc420 qp" in svg
    for qp in (26, 38):  # a missing input stops the figures before any is drawn
        (results / "hevc420" / f"qp{qp}" / "decoded.zarr").rename(tmp_path / f"gone{qp}.zarr")
    with pytest.raises(LfcompError, match="decoded named by .* does not exist"):
        make_figures(metrics, tmp_path / "figures2")
    assert not (tmp_path / "figures2").exists()


def test_rd_curves_keep_the_neural_kinds_apart(tmp_path, monkeypatch):
    points = [_point("hevc444", f"qp{q}", b, p) for q, b, p in [(22, 0.1, 38), (32, 0.03, 33), (42, 0.01, 29)]]
    points += [_point("qdlr-nerf", r, b, p) for r, b, p in [("r8-n32", 0.012, 32), ("r16-n64", 0.02, 34)]]
    points += [_point("qdlr-nelf", r, b, p) for r, b, p in [("r8-n32", 0.011, 31), ("r16-n64", 0.019, 33)]]
    figures = []
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: figures.append(fig) or save(fig, stem))
    _check_figure(plot_rd(points, tmp_path / "rd", title="scene"), tmp_path / "rd")
    for ax in figures[0].axes[:2]:
        lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert list(lines) == ["hevc444", "qdlr-nerf", "qdlr-nelf"]
        styles = {label: (line.get_color(), line.get_marker(), line.get_linestyle()) for label, line in lines.items()}
        assert len(set(styles.values())) == 3
        assert styles["qdlr-nerf"][1:] == ("o", "-") and styles["qdlr-nelf"][1:] == ("s", "-")
        assert styles["hevc444"][2] == "--" and styles["qdlr-nerf"][0] != styles["qdlr-nelf"][0]
        np.testing.assert_allclose(lines["qdlr-nelf"].get_xdata(), [0.011, 0.019])  # its own points only
    legend = [text.get_text() for text in figures[0].axes[0].get_legend().get_texts()]
    assert legend == ["hevc444", "qdlr-nerf", "qdlr-nelf"]
    assert rd_style("av1420", 4)["color"] == "C4" and rd_style("av1420", 4)["linestyle"] == "--"


def test_rd_targets_are_marked_beside_the_achieved_points(tmp_path, monkeypatch):
    anchor_points = [_point("hevc444", f"qp{q}", b, p) for q, b, p in [(22, 0.1, 38), (32, 0.03, 33), (42, 0.01, 29)]]
    nerf = [dataclasses.replace(_point("qdlr-nerf", r, b, p), target_bpp=t)
            for r, b, p, t in [("t0.01", 0.012, 32, 0.01), ("r16-n64", 0.02, 34, None), ("t0.05", 0.05, 36, 0.05)]]
    nelf = [dataclasses.replace(_point("qdlr-nelf", "t0.03", 0.025, 33), target_bpp=0.03)]
    figures = []
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: figures.append(fig) or save(fig, stem))
    _check_figure(plot_rd(anchor_points + nerf + nelf, tmp_path / "rd"), tmp_path / "rd")
    plot_rd(anchor_points + [dataclasses.replace(p, target_bpp=None) for p in nerf + nelf], tmp_path / "plain")
    targeted, plain = figures
    for ax, bare, offset in zip(targeted.axes[:2], plain.axes[:2], (0, 1)):  # RGB, then Y (PSNR + 1)
        curves = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert list(curves) == ["hevc444", "qdlr-nerf", "qdlr-nelf"]
        marks = [line for line in ax.get_lines() if line.get_marker() == "|"]
        assert len(ax.get_lines()) == len(bare.get_lines()) + 2 == len(marks) + 4  # one per codec with targets
        assert not any(line.get_marker() == "|" for line in bare.get_lines())  # points without: as before
        for line, codec in zip(marks, ("qdlr-nerf", "qdlr-nelf")):
            assert line.get_color() == curves[codec].get_color() and line.get_linestyle() == ":"
            assert line.get_alpha() < 1 and line.get_linewidth() < curves[codec].get_linewidth()
        # each target at its point's PSNR, joined to the achieved bpp; the marker at the target only
        np.testing.assert_allclose(marks[0].get_xdata(), [0.01, 0.012, np.nan, 0.05, 0.05, np.nan])
        np.testing.assert_allclose(marks[0].get_ydata(), np.array([32, 32, np.nan, 36, 36, np.nan]) + offset)
        np.testing.assert_allclose(marks[1].get_xdata(), [0.03, 0.025, np.nan])
        assert marks[0].get_markevery() == [0, 3] and marks[1].get_markevery() == [0]
    legend = [text.get_text() for text in targeted.axes[0].get_legend().get_texts()]
    assert legend == ["hevc444", "qdlr-nerf", "qdlr-nelf", "target bpp"]  # once, for every codec's targets
    assert "target bpp" not in [text.get_text() for text in plain.axes[0].get_legend().get_texts()]


def test_rd_markers_come_from_the_registry(monkeypatch):
    markers = {label: marker for codec in registry.CODECS.values() for label, marker in codec.markers.items()}
    assert {label: rd_style(label)["marker"] for label in registry.codec_labels()} == markers
    # A second codec: its own marker where the registry gives one, else a triangle; solid either way.
    latent = dataclasses.replace(QDLR, name="latent", model_kinds=(), stages=(), markers={"latent": "D"},
                                 rate_parameters=(RateParameter("lmbda", "l", float),))
    monkeypatch.setitem(registry.CODECS, "latent", latent)
    assert (rd_style("latent", 3)["marker"], rd_style("latent", 3)["linestyle"]) == ("D", "-")
    monkeypatch.setitem(registry.CODECS, "latent", dataclasses.replace(latent, markers={}))
    assert (rd_style("latent", 3)["marker"], rd_style("latent", 3)["linestyle"]) == ("^", "-")
    monkeypatch.setitem(registry.CODECS, "qdlr", dataclasses.replace(QDLR, markers={"qdlr-nerf": "*"}))
    assert rd_style("qdlr-nerf")["marker"] == "*" and rd_style("qdlr-nelf")["marker"] == "^"


def _stand_in(directory, views, noise, seed, **metrics):
    """A decoded light field (views plus noise) and its metrics.json, as lfcomp evaluate / anchor write them."""
    noisy = np.clip(views + np.random.default_rng(seed).normal(0, noise, views.shape), 0, 255).astype(np.uint8)
    write_lightfield(LightField(noisy), directory / "decoded.zarr")
    bits = 8 * metrics["bytes"]
    metrics = {"decoded": str(directory / "decoded.zarr"), **distortion_metrics(views, noisy), "bits": bits,
               "bpp": bits / views[..., 0].size, **metrics}
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory / "metrics.json"


def test_make_figures_with_nerf_and_nelf_at_one_rate_point(tmp_path):
    views = make_synthetic_lightfield(3, 3, 48, 48, seed=7)
    reference = tmp_path / "lf.zarr"
    write_lightfield(LightField(views), reference)
    results = tmp_path / "results" / "scene"  # new layout, no "scene" key: the scene comes from the path
    metrics = [_stand_in(results / "hevc444" / f"qp{qp}", views, noise, qp, reference=str(reference),
                         anchor="hevc444", qp=qp, bytes=num_bytes, scan="serpentine")
               for qp, noise, num_bytes in [(26, 2.0, 1500), (38, 6.0, 500)]]
    for model, noise, seed, num_bytes in [("nerf", 3.0, 1, 900), ("nelf", 4.0, 2, 600)]:
        metrics.append(_stand_in(results / model / "r8" / "n32", views, noise, seed, reference=str(reference),
                                 bytes=num_bytes, rate_point={"rank": 8, "centroids": 32}, model_kind=model))
    out = tmp_path / "figures"
    written = make_figures(metrics, out)
    # One file per figure and scene, every codec in it: nothing written twice, nothing per model kind.
    assert len(written) == len(set(written))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{kind}_scene.{fmt}" for kind in ("rd", "view_psnr", "error_maps") for fmt in ("png", "svg"))
    for stem in ("rd_scene", "view_psnr_scene", "error_maps_scene"):
        _check_figure([out / f"{stem}.png", out / f"{stem}.svg"], out / stem)
    for stem in ("view_psnr_scene", "error_maps_scene"):  # both kinds side by side with the anchor
        svg = (out / f"{stem}.svg").read_text()
        assert "qdlr-nerf r8-n32" in svg and "qdlr-nelf r8-n32" in svg and "hevc444 qp" in svg
    rd = (out / "rd_scene.svg").read_text()
    assert "qdlr-nerf" in rd and "qdlr-nelf" in rd and "hevc444" in rd
    # With nelf alone, it is the reference the anchors are matched to (its 0.23 bpp: qp38's 0.19,
    # where hevc444 as the reference would take its point nearest the target, qp26's 0.58).
    nelf_only = [p for p in metrics if "/nerf/" not in str(p)]
    make_figures(nelf_only, tmp_path / "nelf", target_bpp=1.0, error_maps=False)
    svg = (tmp_path / "nelf" / "view_psnr_scene.svg").read_text()
    assert "qdlr-nelf r8-n32" in svg and "hevc444 qp38" in svg and "hevc444 qp26" not in svg


def test_write_clip_gif_and_mp4(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, size=(6, 21, 31, 3), dtype=np.uint8)
    gif = write_clip(frames, tmp_path / "path.gif", fps=12)
    with Image.open(gif) as image:
        assert image.n_frames == 6 and image.size == (31, 21) and image.info.get("loop") == 0
    mp4 = write_clip(frames, tmp_path / "path.mp4", fps=12)
    import av

    with av.open(str(mp4)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 6 and decoded[0].shape == (22, 32, 3)  # odd sizes padded to even
    with pytest.raises(LfcompError, match=r"\.gif or \.mp4"):
        write_clip(frames, tmp_path / "path.avi")
    with pytest.raises(LfcompError, match="uint8"):
        write_clip(frames.astype(np.float32), tmp_path / "path.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["path.gif", "path.mp4"]

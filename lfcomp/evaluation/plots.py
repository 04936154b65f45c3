"""Figures (PNG and SVG, matplotlib Agg) and the free-viewpoint clip.

* ``plot_rd``: rate-distortion curves of every codec for one scene (RGB and Y PSNR against bpp,
  log rate axis, the BD range's upper end marked); each registered codec (``qdlr-nerf``,
  ``qdlr-nelf``) a solid curve with its marker from the registry (``Codec.markers``), the
  anchors dashed (``rd_style``). A rate point made for a target rate (``lfcomp evaluate
  --target-bpp``) also has its target marked, faintly in its codec's colour, at its PSNR and
  joined to the achieved bpp by a dotted line (``TARGET_STYLE``; one legend entry for all).
* ``plot_view_psnr``: PSNR of every view as a U×V heat map per codec (one colour scale) and
  along the PVS scan order (the paper's Figure 3).
* ``plot_error_maps``: per codec, the absolute error averaged over all views and colour
  channels (the paper's Figure 2), with its PSNR and bpp.
* ``make_figures``: all of them for every scene, from metrics.json files (``lfcomp plots``, read
  by ``lfcomp.evaluation.results``);
  the view and error figures compare the codecs at similar bpp (``similar_rate_points``). Each
  scene gets one file per figure holding every codec (both neural kinds side by side), named by
  the scene alone, so codecs sharing a scene and rate point never overwrite each other's.
* ``write_clip``: frames (K, H, W, 3) uint8 as an animated GIF (Pillow) or an MP4 (PyAV, H.264).

Every output is written atomically (``lfcomp.artifacts.atomic_output``). matplotlib is imported
by the plotting functions only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lfcomp.anchors.pvs import SCANS, scan_order
from lfcomp.artifacts import atomic_output
from lfcomp.codecs.registry import parse_label
from lfcomp.errors import LfcompError
from lfcomp.evaluation.bd import DEFAULT_RATE_RANGE
from lfcomp.evaluation.floors import FLOORS, floors_of
from lfcomp.evaluation.report import DEFAULT_ANCHORS
from lfcomp.evaluation.results import HEVC, RatePoint, load_points

__all__ = ["make_figures", "mean_error_map", "plot_error_maps", "plot_rd", "plot_view_psnr", "rd_style", "save_figure",
           "similar_rate_points", "write_clip"]

FORMATS = ("png", "svg")
DEFAULT_MARKER = "^"  # a registered codec's curve where the registry gives it no marker
TARGET_LABEL = "target bpp"  # the one legend entry of the targets
TARGET_STYLE: dict[str, Any] = {"marker": "|", "markersize": 8, "linestyle": ":", "linewidth": 0.8, "alpha": 0.6}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, stem: str | Path, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` (atomically) and close it; returns the paths."""
    plt = _pyplot()
    paths = []
    try:
        for fmt in FORMATS:
            path = Path(f"{stem}.{fmt}")
            with atomic_output(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _metadata(fmt: str) -> dict[str, Any]:
    """No creation date in the files, so that reruns give identical figures."""
    return {"Date": None} if fmt == "svg" else {}


# --------------------------------------------------------------------------- RD curves

def rd_style(codec: str, index: int = 0) -> dict[str, Any]:
    """Line style of a codec's RD curve: the ``index``-th colour of the cycle; the registered codecs
    solid and thicker, with the registry's marker for the label (``Codec.markers``: nerf ●, nelf ■;
    else ▲), the anchors dashed."""
    style: dict[str, Any] = {"color": f"C{index % 10}", "label": codec}
    registered = parse_label(codec)
    if registered is not None:
        marker = registered[0].markers.get(codec, DEFAULT_MARKER)
        return {**style, "linestyle": "-", "linewidth": 1.8, "marker": marker, "markersize": 5}
    return {**style, "linestyle": "--", "linewidth": 1.0, "marker": ".", "markersize": 6}


def plot_rd(points: list[RatePoint], stem: str | Path, title: str | None = None,
            rate_range: tuple[float, float] = DEFAULT_RATE_RANGE) -> list[Path]:
    """RD curves of ``points`` (the rate points of one scene), one per codec, in the order given."""
    if not points:
        raise LfcompError(stem, "no rate points to plot")
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    codecs = list(dict.fromkeys(p.codec for p in points))
    targets = False
    for ax, key, label in zip(axes, ("psnr_rgb", "psnr_y"), ("PSNR RGB (dB)", "PSNR Y (dB)")):
        for codec in codecs:
            style = rd_style(codec, codecs.index(codec))
            curve = sorted((p.bpp, getattr(p, key)) for p in points
                           if p.codec == codec and getattr(p, key) is not None)
            if curve:
                x, y = zip(*curve)
                ax.plot(x, y, **style)
            targets |= _target_marks(ax, [p for p in points if p.codec == codec], key, style["color"])
        ax.axvline(rate_range[1], color="0.6", linestyle="--", linewidth=0.8)
        if key == "psnr_rgb":
            _floor_lines(ax, next((p.floors for p in points if p.floors), {}))
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if targets:  # one entry for every codec's targets, in a neutral colour
        handles.append(Line2D([], [], color="0.5", **TARGET_STYLE))
        labels.append(TARGET_LABEL)
    axes[0].legend(handles, labels, fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


def _target_marks(ax: Any, points: list[RatePoint], key: str, color: str) -> bool:
    """The targets of ``points`` (one codec's) that have one, each marked at (target bpp, the point's
    ``key`` PSNR) and joined to its achieved bpp, as one line of NaN-separated segments marked at the
    targets only; whether any was drawn."""
    marks = [(p.target_bpp, p.bpp, getattr(p, key)) for p in points
             if p.target_bpp is not None and getattr(p, key) is not None]
    if not marks:
        return False
    x = [value for target, bpp, _ in marks for value in (target, bpp, math.nan)]
    y = [value for *_, psnr in marks for value in (psnr, psnr, math.nan)]
    ax.plot(x, y, color=color, markevery=list(range(0, len(x), 3)), label="_nolegend_", **TARGET_STYLE)
    return True


def _floor_lines(ax: Any, floors: dict[str, float | None]) -> None:
    """The scene's trivial floors as horizontal lines (what a model must beat at any rate)."""
    for (name, value), style in zip(floors.items(), (":", "-.")):
        if value is not None and name in FLOORS:
            ax.axhline(value, color="0.35", linestyle=style, linewidth=0.9, label=f"floor: {FLOORS[name]}")


# --------------------------------------------------------------------------- per-view PSNR


def plot_view_psnr(psnr_views: dict[str, Any], stem: str | Path, scan: str = "serpentine",
                   titles: dict[str, str] | None = None, title: str | None = None,
                   floors: dict[str, Any] | None = None) -> list[Path]:
    """Per-view PSNR of each codec ({label: (U, V) array}): heat maps and a line along ``scan``,
    with the scene's trivial floors per view ({floor name: (U, V) array}) as dashed lines."""
    if not psnr_views:
        raise LfcompError(stem, "no per-view PSNR to plot")
    if scan not in SCANS:
        raise LfcompError(stem, f"unknown scan order {scan!r} (choose from {', '.join(SCANS)})")
    maps = {label: np.array(values, dtype=float) for label, values in psnr_views.items()}  # None → nan
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise LfcompError(stem, f"per-view PSNR must be U×V arrays of one shape, got {sorted(shapes)}")
    U, V = next(iter(shapes))
    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    plt = _pyplot()
    n = len(maps)
    fig = plt.figure(figsize=(max(3.2 * n, 6), 6.4), constrained_layout=True)
    grid = fig.add_gridspec(2, n, height_ratios=[1.2, 1])
    image = None
    for i, (label, values) in enumerate(maps.items()):
        ax = fig.add_subplot(grid[0, i])
        image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title((titles or {}).get(label, label), fontsize="small")
        ax.set_xlabel("view column v")
        ax.set_ylabel("view row u")
        ax.set_xticks(range(V))
        ax.set_yticks(range(U))
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="PSNR (dB)")
    ax = fig.add_subplot(grid[1, :])
    order = scan_order(U, V, scan)
    for label, values in maps.items():
        ax.plot(range(U * V), [values[u, v] for u, v in order], marker=".", label=label)
    for (name, values), style in zip((floors or {}).items(), (":", "-.")):
        per_view = np.array(values, dtype=float)
        if per_view.shape == (U, V):
            ax.plot(range(U * V), [per_view[u, v] for u, v in order], color="0.35", linestyle=style,
                    label=f"floor: {FLOORS.get(name, name)}")
    ax.set_xlabel(f"view index along the {scan} scan")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


# --------------------------------------------------------------------------- error maps


def mean_error_map(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """|reference − decoded| averaged over all views and colour channels: (H, W) float, in levels."""
    if reference.shape != decoded.shape:
        raise LfcompError("error map", f"decoded shape {decoded.shape} differs from the reference {reference.shape}")
    H, W = reference.shape[-3:-1]
    total = np.zeros((H, W))
    ref = reference.reshape(-1, H, W, 3)
    dec = decoded.reshape(-1, H, W, 3)
    for r, d in zip(ref, dec):  # view by view, to keep memory small
        total += np.abs(r.astype(np.int16) - d.astype(np.int16)).mean(axis=-1)
    return total / len(ref)


def plot_error_maps(reference: np.ndarray, decoded: dict[str, np.ndarray], stem: str | Path,
                    titles: dict[str, str] | None = None, title: str | None = None) -> list[Path]:
    """Averaged error maps of each decoded light field ({label: (U, V, H, W, 3)}), one colour scale."""
    if not decoded:
        raise LfcompError(stem, "no decoded light fields to plot")
    maps = {label: mean_error_map(reference, views) for label, views in decoded.items()}
    vmax = max(float(np.percentile(m, 99.5)) for m in maps.values()) or 1.0
    plt = _pyplot()
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1, 3.4), constrained_layout=True, squeeze=False)
    image = None
    for ax, (label, values) in zip(axes[0], maps.items()):
        image = ax.imshow(values, vmin=0, vmax=vmax, cmap="inferno")
        ax.set_title((titles or {}).get(label, label), fontsize="small")
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes[0]), shrink=0.9, label="mean |error| (8-bit levels)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


# --------------------------------------------------------------------------- all figures


def similar_rate_points(points: list[RatePoint], reference_codec: str,
                        target_bpp: float | None = None) -> dict[str, RatePoint]:
    """For one scene: the reference codec's rate point nearest ``target_bpp`` (default: its median
    bpp), and for every other codec its point nearest that bpp (on a log scale)."""
    reference = sorted((p for p in points if p.codec == reference_codec), key=lambda p: p.bpp)
    if not reference:
        raise LfcompError(reference_codec, "no rate points of the reference codec for this scene")
    target = target_bpp if target_bpp is not None else reference[(len(reference) - 1) // 2].bpp

    def nearest(candidates: list[RatePoint], bpp: float) -> RatePoint:
        return min(candidates, key=lambda p: abs(math.log(p.bpp / bpp)) if p.bpp > 0 else math.inf)

    chosen = {reference_codec: nearest(reference, target)}
    for codec in dict.fromkeys(p.codec for p in points):
        if codec != reference_codec:
            chosen[codec] = nearest([p for p in points if p.codec == codec], chosen[reference_codec].bpp)
    return chosen


def _point_title(point: RatePoint) -> str:
    quality = "lossless" if point.psnr_rgb is None else f"{point.psnr_rgb:.2f} dB"
    target = "" if point.target_bpp is None else f" (target {point.target_bpp:.4f})"
    return f"{point.codec} {point.rate_point}\n{quality}, {point.bpp:.4f} bpp{target}"


def _resolve(path_text: str | None, metrics_path: Path, what: str) -> Path:
    if not path_text:
        raise LfcompError(metrics_path, f"has no {what!r} path")
    path = Path(path_text)
    if not path.exists() and not path.is_absolute():
        beside = metrics_path.parent / path.name  # the run directory may differ from this one
        if beside.exists():
            return beside
    if not path.exists():
        raise LfcompError(path, f"{what} named by {metrics_path} does not exist")
    return path


def make_figures(metrics_paths: list[str | Path], outdir: str | Path, reference_codec: str | None = None,
                 view_codecs: tuple[str, ...] | None = None, target_bpp: float | None = None,
                 rate_range: tuple[float, float] = DEFAULT_RATE_RANGE, error_maps: bool = True) -> list[Path]:
    """Per scene: ``rd_{scene}``, ``view_psnr_{scene}`` and ``error_maps_{scene}`` (.png and .svg) in ``outdir``.

    ``reference_codec`` (default: the first registered codec in registry order, ``qdlr-nerf``,
    else the first default anchor, ``hevc444``, else the first codec) picks the rate point the
    others are matched to; the per-view figure shows it and ``view_codecs`` (default: the other
    registered codecs and the HEVC anchors), the error maps show every codec.
    """
    from lfcomp.io.lightfield import read_lightfield

    points = load_points(list(metrics_paths))
    out = Path(outdir)
    plans = []
    for scene in dict.fromkeys(p.scene for p in points):  # check every input before drawing anything
        scene_points = [p for p in points if p.scene == scene]  # codecs in table order: anchors, then ours
        codecs = list(dict.fromkeys(p.codec for p in scene_points))
        registered = list(dict.fromkeys(p.codec for p in scene_points if p.entry is not None))
        hevc = [p.codec for p in scene_points if p.entry is None and p.codec.startswith(HEVC)]
        ref_codec = reference_codec or next((c for c in (*registered, DEFAULT_ANCHORS[0]) if c in codecs), codecs[0])
        if ref_codec not in codecs:
            raise LfcompError(ref_codec, f"no rate points of this codec for scene {scene}")
        chosen = similar_rate_points(scene_points, ref_codec, target_bpp)
        default_views = list(dict.fromkeys(registered + hevc))
        compare = [ref_codec] + [c for c in (view_codecs or default_views) if c in chosen and c != ref_codec]
        views = {c: chosen[c].metrics.get("psnr_rgb_views") for c in compare}
        missing = [c for c, v in views.items() if v is None]
        if missing:
            raise LfcompError(chosen[missing[0]].path, "has no per-view PSNR ('psnr_rgb_views')")
        files = {}
        if error_maps:
            ref_point = chosen[ref_codec]
            files["reference"] = _resolve(ref_point.metrics.get("reference"), ref_point.path, "reference")
            for codec, point in chosen.items():
                files[codec] = _resolve(point.metrics.get("decoded"), point.path, "decoded")
        plans.append((scene, scene_points, chosen, compare, views, files))

    written: list[Path] = []
    for scene, scene_points, chosen, compare, views, files in plans:
        titles = {codec: _point_title(point) for codec, point in chosen.items()}
        scan = next((chosen[c].scan for c in compare if chosen[c].scan in SCANS), "serpentine")
        written += plot_rd(scene_points, out / f"rd_{scene}", title=scene, rate_range=rate_range)
        reference_lf = read_lightfield(files["reference"]) if error_maps else None
        floors = ({name: f["psnr_rgb_views"] for name, f in floors_of(reference_lf.attrs, reference_lf.views).items()}
                  if reference_lf is not None else None)
        written += plot_view_psnr(views, out / f"view_psnr_{scene}", scan=scan, titles=titles,
                                  title=f"{scene}: PSNR per view at similar bpp", floors=floors)
        if error_maps:
            reference = reference_lf.views
            decoded = {codec: read_lightfield(files[codec]).views for codec in chosen}
            written += plot_error_maps(reference, decoded, out / f"error_maps_{scene}", titles=titles,
                                       title=f"{scene}: error averaged over all views")
    return written


# --------------------------------------------------------------------------- clip


def write_clip(frames: np.ndarray, path: str | Path, fps: float = 10.0) -> Path:
    """Write frames (K, H, W, 3) uint8 as an animated GIF (``.gif``, looping) or an MP4 (``.mp4``,
    H.264 4:2:0 at CRF 18; odd sizes are edge-padded to even), atomically."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise LfcompError(path, f"clip frames must be uint8 (K, H, W, 3) with K ≥ 1, "
                                f"got {frames.dtype} {frames.shape}")
    if not fps > 0:
        raise LfcompError(path, f"frame rate must be positive, got {fps}")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        with atomic_output(path) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=max(int(round(1000 / fps)), 20), loop=0)
    elif suffix == ".mp4":
        _write_mp4(frames, path, fps)
    else:
        raise LfcompError(path, "clip must end in .gif or .mp4")
    return path


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    from fractions import Fraction

    import av

    K, H, W, _ = frames.shape
    pad = ((0, 0), (0, H % 2), (0, W % 2), (0, 0))
    frames = np.pad(frames, pad, mode="edge") if H % 2 or W % 2 else frames
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)

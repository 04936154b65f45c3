"""Rate-point tables of the codecs (``lfcomp summarize``): one row per scene, codec and rate point.

``summarize(metrics_paths, out_csv, out_md)`` writes every rate point of the metrics.json of
``lfcomp evaluate`` as a CSV row and a Markdown report: per scene, one table per codec label
(``qdlr-nerf``, the paper's codec; ``qdlr-nelf``; any other registered codec), rows in increasing
bpp, i.e. along the rate-distortion curve, and, when there is more than one scene, tables of the
means over scenes per codec and rate point. The rate columns are the registered codecs' rate
parameters (QDLR: rank, centroids); the per-stage columns follow the paper's Table 2 (PSNR and size
after NeRF-org, LR-NeRF, DLR-NeRF, QDLR-NeRF; NeLF-org, ... for the neural light field). The
``model`` column is the model kind (``nerf``), or the codec's label for a codec without kinds.
Each scene's trivial floors (``lfcomp.evaluation.floors``) are listed, and a PSNR below one is marked.
A rate point made for a target rate (``lfcomp evaluate --target-bpp``) has it in ``target_bpp``
beside the achieved ``bpp``; a codec's Markdown tables get a "target bpp" column only where one of
their rows has a target.
Anchors are compared with the codecs by ``lfcomp report``, not here. The metrics are read by
``lfcomp.evaluation.results``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lfcomp.errors import LfcompError
from lfcomp.evaluation.floors import FLOORS
from lfcomp.evaluation.results import RatePoint, codec_rank, load_points, rate_names, stage_keys
from lfcomp.evaluation.tables import BELOW, MISSING, fmt, markdown_table, write_csv, write_text
from lfcomp.models.registry import MODEL_KINDS

__all__ = ["TARGET_NOTE", "summarize", "summary_columns"]

TARGET_HEADER = "target bpp"  # the column just before "bpp" in a codec's tables, where a point has a target
TARGET_NOTE = "target bpp: the rate the point was made for; bpp: what its bitstream achieved."


def summary_columns() -> list[str]:
    """The columns of summary.csv: rate parameters and report stages of the registered codecs."""
    stages = stage_keys()
    return (["scene", "model", *rate_names(), "bytes", "target_bpp", "bpp", "psnr_rgb", "psnr_y", "params",
             "size_pct"]
            + [f"psnr_{stage}" for stage in stages] + [f"params_{stage}" for stage in stages]
            + [f"floor_{name}" for name in FLOORS] + ["below_floors", "grid_u", "grid_v", "height", "width", "metrics"])


def summarize(metrics_paths: list[Path], out_csv: Path, out_md: Path) -> None:
    """Write the rate-point table of ``metrics_paths`` as CSV (``out_csv``) and Markdown (``out_md``)."""
    points = load_points(metrics_paths)
    anchor = next((p for p in points if p.entry is None), None)
    if anchor is not None:
        raise LfcompError(anchor.path, f"an anchor's metrics ({anchor.codec}): lfcomp summarize tables the "
                                       "codecs' rate points, lfcomp report compares them with the anchors")
    write_csv([_row(point) for point in points], summary_columns(), out_csv)
    write_text(_markdown(points), out_md)


def _row(point: RatePoint) -> dict[str, Any]:
    stages = {stage.key: stage for stage in point.stages}
    row: dict[str, Any] = {
        "scene": point.scene, "model": point.kind or point.codec, **point.rate, "bytes": point.bytes,
        "target_bpp": point.target_bpp, "bpp": point.bpp, "psnr_rgb": point.psnr_rgb, "psnr_y": point.psnr_y,
        "params": point.params, "size_pct": point.size_percent, "metrics": str(point.path),
    }
    for key, stage in stages.items():
        row[f"psnr_{key}"], row[f"params_{key}"] = stage.psnr_rgb, stage.params
    for name in FLOORS:
        row[f"floor_{name}"] = point.floors.get(name)
    row["below_floors"] = " ".join(point.below_floors)
    row["grid_u"], row["grid_v"] = point.grid or (None, None)
    row["height"], row["width"] = point.size or (None, None)
    return row


def _markdown(points: list[RatePoint]) -> str:
    scenes = list(dict.fromkeys(point.scene for point in points))
    title = f"Rate points of {scenes[0]}" if len(scenes) == 1 else f"Rate points of {len(scenes)} scenes"
    lines = [f"# {title}", "",
             "bpp = 8 x bytes of the bitstream / (U x V x H x W); PSNR averaged over all views, "
             "from the views decoded from the bitstream. One table per model kind; rows in increasing bpp. "
             f"{BELOW} marks a PSNR below one of the scene's floors (its views sent as one image)."
             + (f" {TARGET_NOTE}" if _has_target(points) else ""), ""]
    for scene in scenes:
        scene_points = [point for point in points if point.scene == scene]
        first = scene_points[0]
        shape = ""
        if first.grid and first.size:
            shape = f" ({first.grid[0]}x{first.grid[1]} views of {first.size[0]}x{first.size[1]})"
        lines += [f"## {scene}{shape}", ""]
        floors = next((p.floors for p in scene_points if p.floors), {})
        if floors:
            lines += ["Floors: " + "; ".join(f"{FLOORS[name]}: {fmt(value, 2)} dB" for name, value in floors.items()
                                             if name in FLOORS) + ".", ""]
        for codec_points in _by_codec(scene_points):
            lines += [_heading(codec_points[0]), ""] + _scene_table(codec_points) + [""]
    if len(scenes) > 1:
        lines += ["## Mean over scenes", ""]
        for codec_points in _by_codec(points):
            lines += [_heading(codec_points[0]), ""] + _mean_table(codec_points) + [""]
    return "\n".join(lines)


def _by_codec(points: list[RatePoint]) -> list[list[RatePoint]]:
    """The points of each codec label, the codecs in table order, each in the order given."""
    ranks = {point.codec: codec_rank(point) for point in points}
    return [[p for p in points if p.codec == codec] for codec in sorted(ranks, key=ranks.__getitem__)]


def _heading(point: RatePoint) -> str:
    """``### NeRF (qdlr-nerf)`` for a codec on a model kind, ``### latent`` for one without kinds."""
    if point.kind is None:
        return f"### {point.codec}"
    display = MODEL_KINDS[point.kind].display_name if point.kind in MODEL_KINDS else point.kind
    return f"### {display} ({point.codec})"


def _rate_header(point: RatePoint) -> list[str]:
    return [parameter.name for parameter in point.entry.rate_parameters]


def _has_target(points: list[RatePoint]) -> bool:
    """Whether one of ``points`` was made for a target rate: its table gets the "target bpp" column."""
    return any(point.target_bpp is not None for point in points)


def _scene_table(points: list[RatePoint]) -> list[str]:
    """One codec on one scene: a row per rate point, with its stages' PSNR and size where it has stages."""
    names, titles = _rate_header(points[0]), points[0].stage_titles()
    targeted = _has_target(points)
    header = [*names, "bytes", *([TARGET_HEADER] if targeted else []), "bpp", "PSNR RGB (dB)", "PSNR Y (dB)",
              "params"]
    align = "r" * len(header)
    if titles:
        first = next(iter(titles.values()))
        header += [f"size vs {first}", f"PSNR {' / '.join(titles.values())} (dB)"]
        align += "rl"
    rows = []
    for point in points:
        mark = BELOW if point.below_floors else ""
        row = [*(fmt(point.rate.get(name)) for name in names), fmt(point.bytes),
               *([fmt(point.target_bpp, 5)] if targeted else []), fmt(point.bpp, 5),
               fmt(point.psnr_rgb, 2) + mark, fmt(point.psnr_y, 2), fmt(point.params)]
        if titles:
            row += [fmt(point.size_percent, 1, "%"), _stage_psnrs(point, list(titles))]
        rows.append(row)
    return markdown_table(header, rows, align)


def _stage_psnrs(point: RatePoint, keys: list[str]) -> str:
    stages = {stage.key: stage for stage in point.stages}
    values = [stages.get(key) for key in keys]
    if not any(stage is not None and stage.psnr_rgb is not None for stage in values):
        return MISSING
    return " / ".join(fmt(stage.psnr_rgb if stage else None, 2) + (BELOW if stage and stage.below_floors else "")
                      for stage in values)


def _mean_table(points: list[RatePoint]) -> list[str]:
    """Means over scenes per rate point, for the points of one codec, in increasing mean bpp; the
    mean target only where every scene's point has one (else a mean of some would pass for all)."""
    names = _rate_header(points[0])
    groups: dict[tuple, list[RatePoint]] = {}
    for point in points:
        groups.setdefault(tuple(point.rate.get(name) for name in names), []).append(point)
    means = []
    for rate, group in groups.items():
        n = len(group)
        targets = [p.target_bpp for p in group]
        target = sum(targets) / n if None not in targets else None
        means.append((sum(p.bpp for p in group) / n, rate, n, sum(p.bytes for p in group) / n, target,
                      sum(p.psnr_rgb for p in group) / n, sum(p.psnr_y for p in group) / n))
    targeted = _has_target(points)
    rows = [[*(fmt(v) for v in rate), str(n), fmt(nbytes, 0), *([fmt(target, 5)] if targeted else []), fmt(bpp, 5),
             fmt(psnr_rgb, 2), fmt(psnr_y, 2)]
            for bpp, rate, n, nbytes, target, psnr_rgb, psnr_y in sorted(means, key=lambda m: m[0])]
    header = [*names, "scenes", "bytes", *([TARGET_HEADER] if targeted else []), "bpp", "PSNR RGB (dB)", "PSNR Y (dB)"]
    return markdown_table(header, rows, "r" * len(header))

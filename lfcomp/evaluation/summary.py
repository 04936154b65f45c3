"""Rate-point tables: one row per (scene, model, rank, centroids) from the metrics.json of ``lfcomp evaluate``.

``summarize(metrics_paths, out_csv, out_md)`` writes every rate point as a CSV row and a Markdown
report: per scene, one table per model kind (``nerf``: the paper's codec ``qdlr-nerf``; ``nelf``:
``qdlr-nelf``), rows in increasing bpp, i.e. along the rate-distortion curve, and, when there is
more than one scene, tables of the means over scenes per model and rate point. The per-stage
columns follow the paper's Table 2 (PSNR and size after NeRF-org, LR-NeRF, DLR-NeRF, QDLR-NeRF;
NeLF-org, LR-NeLF, … for the neural light field).

The model kind is the metrics' ``model_kind``, else the workflow layout's model directory, else
``nerf``. The scene is the metrics' ``scene``, else taken from the layout:
``{scene}/{model}/r{rank}/n{centroids}/metrics.json`` or, before there were model kinds,
``{scene}/r{rank}/n{centroids}/metrics.json``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError
from lfcomp.evaluation.metrics import read_metrics
from lfcomp.config.presets import MODEL_KINDS

STAGES = ("nerf", "lowrank", "distill", "quantize")
MODEL_NAMES = {"nerf": "NeRF", "nelf": "NeLF"}

COLUMNS = (
    ["scene", "model", "rank", "centroids", "bytes", "bpp", "psnr_rgb", "psnr_y", "params", "size_pct"]
    + [f"psnr_{stage}" for stage in STAGES]
    + [f"params_{stage}" for stage in STAGES]
    + ["grid_u", "grid_v", "height", "width", "metrics"]
)

_RATE_DIRS = re.compile(r"^r(\d+)$"), re.compile(r"^n(\d+)$")


def stage_titles(kind: str = "nerf") -> dict[str, str]:
    """The stages' titles for a model kind: NeRF-org … QDLR-NeRF, NeLF-org … QDLR-NeLF."""
    name = MODEL_NAMES.get(kind, kind.upper())
    return {"nerf": f"{name}-org", "lowrank": f"LR-{name}", "distill": f"DLR-{name}", "quantize": f"QDLR-{name}"}


STAGE_TITLES = stage_titles("nerf")  # the paper's


def codec_label(kind: str) -> str:
    """The neural codec's label for a model kind: ``qdlr-nerf``, ``qdlr-nelf``."""
    return f"qdlr-{kind}"


def neural_layout(path: str | Path) -> tuple[str | None, str | None, int | None, int | None] | None:
    """(scene, model, rank, centroids) of a metrics.json in the workflow's neural layout, with model
    None in the old ``{scene}/r{rank}/n{centroids}/`` one (and scene None where the path is too
    short to hold it); None when the path is not in either layout."""
    parts = Path(path).parent.parts
    if len(parts) < 2:
        return None
    rank, centroids = _RATE_DIRS[0].match(parts[-2]), _RATE_DIRS[1].match(parts[-1])
    if not (rank and centroids):
        return None
    if len(parts) >= 3 and parts[-3] in MODEL_KINDS:
        scene, model = (parts[-4] if len(parts) >= 4 else None), parts[-3]
    else:
        scene, model = (parts[-3] if len(parts) >= 3 else None), None
    return scene, model, int(rank[1]), int(centroids[1])


def _row(path: Path) -> dict[str, Any]:
    metrics = read_metrics(path)
    missing = [key for key in ("psnr_rgb", "psnr_y", "bytes", "bpp") if key not in metrics]
    if missing:
        raise LfcompError(path, f"metrics lack {', '.join(missing)}")

    scene, model, rank, centroids = neural_layout(path) or (None, None, None, None)
    rate_point = metrics.get("rate_point") or {}
    row: dict[str, Any] = {
        "scene": metrics.get("scene") or (scene if scene is not None else path.parent.name),
        "model": metrics.get("model_kind") or model or "nerf",
        "rank": rate_point.get("rank", rank),
        "centroids": rate_point.get("centroids", centroids),
        "bytes": metrics["bytes"],
        "bpp": metrics["bpp"],
        "psnr_rgb": metrics["psnr_rgb"],
        "psnr_y": metrics["psnr_y"],
        "metrics": str(path),
    }
    stages = {stage: (metrics.get("stages") or {}).get(stage) or {} for stage in STAGES}
    for stage in STAGES:
        row[f"psnr_{stage}"] = stages[stage].get("psnr_rgb")
        row[f"params_{stage}"] = stages[stage].get("params")
    row["params"] = metrics.get("params", row["params_quantize"])
    # Model size relative to the unquantized full model (NeRF-org): the stage's own figure (which
    # can count bits) if it has one, else the ratio of parameter counts.
    row["size_pct"] = stages["quantize"].get("size_percent")
    if row["size_pct"] is None and row["params_nerf"] and row["params"] is not None:
        row["size_pct"] = 100.0 * row["params"] / row["params_nerf"]
    row["grid_u"], row["grid_v"] = (metrics.get("grid") or [None, None])[:2]
    row["height"], row["width"] = (metrics.get("size") or [None, None])[:2]
    return row


def _model_order(model: str) -> tuple[int, str]:
    """nerf (the paper's) first, then nelf, then any other kind by name."""
    return (MODEL_KINDS.index(model) if model in MODEL_KINDS else len(MODEL_KINDS), model)


def _sort_key(row: dict[str, Any]) -> tuple:
    return (str(row["scene"]), _model_order(row["model"]), row["bpp"], -(row["rank"] or 0), -(row["centroids"] or 0))


def _check_duplicates(rows: list[dict[str, Any]]) -> None:
    seen: dict[tuple, str] = {}
    for row in rows:
        if row["rank"] is None or row["centroids"] is None:
            continue
        key = (row["scene"], row["model"], row["rank"], row["centroids"])
        if key in seen:
            raise LfcompError(row["metrics"], f"same scene, model and rate point as {seen[key]} "
                                              f"({key[0]}, {key[1]}, r{key[2]}-n{key[3]})")
        seen[key] = row["metrics"]


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _model_heading(model: str) -> str:
    return f"### {MODEL_NAMES.get(model, model)} ({codec_label(model)})"


def _stage_psnrs(row: dict[str, Any]) -> str:
    values = [row[f"psnr_{stage}"] for stage in STAGES]
    return " / ".join(_fmt(v, 2) for v in values) if any(v is not None for v in values) else "–"


def _scene_table(rows: list[dict[str, Any]], model: str = "nerf") -> list[str]:
    titles = stage_titles(model)
    stages = " / ".join(titles[s] for s in STAGES)
    lines = [
        f"| rank | centroids | bytes | bpp | PSNR RGB (dB) | PSNR Y (dB) | params | size vs {titles['nerf']} "
        f"| PSNR {stages} (dB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        size = "–" if row["size_pct"] is None else f"{row['size_pct']:.1f}%"
        lines.append(
            f"| {_fmt(row['rank'], 0)} | {_fmt(row['centroids'], 0)} | {row['bytes']} | {row['bpp']:.5f} "
            f"| {row['psnr_rgb']:.2f} | {row['psnr_y']:.2f} | {_fmt(row['params'], 0)} | {size} "
            f"| {_stage_psnrs(row)} |"
        )
    return lines


def _mean_table(rows: list[dict[str, Any]]) -> list[str]:
    """Means over scenes per rate point, for rows of one model kind."""
    points: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        points.setdefault((row["rank"], row["centroids"]), []).append(row)
    lines = [
        "| rank | centroids | scenes | bytes | bpp | PSNR RGB (dB) | PSNR Y (dB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    means = []
    for (rank, centroids), group in points.items():
        n = len(group)
        means.append((
            sum(r["bpp"] for r in group) / n, rank, centroids, n,
            sum(r["bytes"] for r in group) / n,
            sum(r["psnr_rgb"] for r in group) / n,
            sum(r["psnr_y"] for r in group) / n,
        ))
    for bpp, rank, centroids, n, nbytes, psnr_rgb, psnr_y in sorted(means, key=lambda m: m[0]):
        lines.append(
            f"| {_fmt(rank, 0)} | {_fmt(centroids, 0)} | {n} | {nbytes:.0f} | {bpp:.5f} "
            f"| {psnr_rgb:.2f} | {psnr_y:.2f} |"
        )
    return lines


def _models(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({row["model"] for row in rows}, key=_model_order)


def summarize(metrics_paths: list[Path], out_csv: Path, out_md: Path) -> None:
    """Write the rate-point table of ``metrics_paths`` as CSV (``out_csv``) and Markdown (``out_md``)."""
    if not metrics_paths:
        raise LfcompError("summarize", "no metrics.json given")
    rows = sorted((_row(Path(p)) for p in metrics_paths), key=_sort_key)
    _check_duplicates(rows)
    scenes = list(dict.fromkeys(row["scene"] for row in rows))

    with atomic_output(out_csv) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})

    title = f"Rate points of {scenes[0]}" if len(scenes) == 1 else f"Rate points of {len(scenes)} scenes"
    lines = [f"# {title}", ""]
    lines += [
        "bpp = 8 x bytes of the bitstream / (U x V x H x W); PSNR averaged over all views, "
        "from the views decoded from the bitstream. One table per model kind; rows in increasing bpp.",
        "",
    ]
    for scene in scenes:
        scene_rows = [row for row in rows if row["scene"] == scene]
        first = scene_rows[0]
        shape = ""
        if first["grid_u"] is not None and first["height"] is not None:
            shape = f" ({first['grid_u']}x{first['grid_v']} views of {first['height']}x{first['width']})"
        lines += [f"## {scene}{shape}", ""]
        for model in _models(scene_rows):
            model_rows = [row for row in scene_rows if row["model"] == model]
            lines += [_model_heading(model), ""] + _scene_table(model_rows, model) + [""]
    if len(scenes) > 1:
        lines += ["## Mean over scenes", ""]
        for model in _models(rows):
            lines += [_model_heading(model), ""] + _mean_table([r for r in rows if r["model"] == model]) + [""]
    with atomic_output(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines))

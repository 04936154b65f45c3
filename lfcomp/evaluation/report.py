"""Summary tables of every codec and anchor (``results/summary/``) from metrics.json files.

``build_report(metrics_paths, outdir)`` writes

* ``rd.csv``: one row per scene × codec × rate point (bytes, bits, bpp, PSNR RGB and Y, encode
  and decode seconds where known);
* ``bd_psnr.csv`` and ``bd_psnr.md`` (like the paper's Table 1): BD-PSNR and BD-rate of every
  codec against each HEVC anchor, per scene and averaged over scenes, with the VCEG-M33 cubic
  fit as the primary figure and pchip beside it, over the overlap of the curves inside
  (0, 0.2] bpp (``lfcomp.evaluation.bd``). Where a value cannot be computed (a single rate point, curves
  that do not overlap, …) the row says why instead of giving a number;
* ``stages.csv`` and ``stages.md`` (like Table 2): PSNR and model size (% of NeRF-org) after
  each stage of the neural codec, per scene and averaged over scenes, per rate point.

A metrics.json is an anchor's (``lfcomp anchor``: it has ``anchor``, e.g. ``hevc444``) or the
neural codec's (``lfcomp evaluate --model``: it has ``rate_point``; its codec is ``qdlr-<kind>``
after its ``model_kind``: ``qdlr-nerf``, the paper's, or ``qdlr-nelf``). Each neural kind is a
codec of its own: its own RD curve, BD rows against each anchor and stage table (NeLF-org, … for
nelf). The scene is the metrics' ``scene`` key, else taken from the workflow's layout:
``results/{scene}/{anchor}/qp{qp}/``, ``results/{scene}/{model}/r{rank}/n{centroids}/`` or the
older ``results/{scene}/r{rank}/n{centroids}/``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from lfcomp.artifacts import atomic_output
from lfcomp.evaluation.bd import DEFAULT_RATE_RANGE, METHODS, bd_all
from lfcomp.errors import LfcompError
from lfcomp.evaluation.metrics import read_metrics
from lfcomp.evaluation.summary import STAGES, codec_label, neural_layout, stage_titles

NEURAL = codec_label("nerf")
DEFAULT_ANCHORS = ("hevc444", "hevc420")
DISTORTIONS = ("psnr_rgb", "psnr_y")

RD_COLUMNS = ["scene", "codec", "rate_point", "qp", "rank", "centroids", "bytes", "bits", "bpp", "psnr_rgb",
              "psnr_y", "encode_seconds", "decode_seconds", "scan", "metrics"]
BD_COLUMNS = ["scene", "anchor", "codec", "distortion",
              *(f"bd_{m}_{f}" for m in ("psnr", "rate") for f in METHODS),
              "bpp_low", "bpp_high", "anchor_points", "test_points", "scenes", "note"]
STAGE_COLUMNS = ["scene", "codec", "rank", "centroids", "stage", "title", "psnr_rgb", "params", "size_percent",
                 "scenes"]
_SHORT = {"few_points": "n/c: too few points", "no_overlap": "no overlap", "outside_range": "outside range",
          "bad_rate": "n/c: bad rate", "missing": "no anchor"}


# --------------------------------------------------------------------------- reading


def codec_of(metrics: dict[str, Any], path: Path) -> str:
    """The codec label of a metrics.json: the anchor's label, or ``qdlr-nerf`` for the neural codec
    (``qdlr-<kind>`` for a model kind other than nerf, e.g. ``qdlr-nelf``)."""
    if metrics.get("anchor"):
        return str(metrics["anchor"])
    layout = neural_layout(path)
    if "rate_point" in metrics or "model_kind" in metrics or layout:
        return codec_label(metrics.get("model_kind") or (layout and layout[1]) or "nerf")
    raise LfcompError(path, "cannot tell which codec wrote these metrics (no 'anchor' or 'rate_point' key)")


def scene_of(metrics: dict[str, Any], path: Path) -> str:
    """The scene: the ``scene`` key, else from the layout: ``{scene}/{model}/r{rank}/n{centroids}/``
    (or the older ``{scene}/r{rank}/n{centroids}/``) for the neural codec, ``{scene}/{anchor}/qp{qp}/``
    (the directory three levels up) otherwise."""
    if metrics.get("scene"):
        return str(metrics["scene"])
    layout = neural_layout(path)
    if layout and layout[0] is not None:
        return layout[0]
    parts = path.parent.parts
    return parts[-3] if len(parts) >= 3 else path.parent.name


def load_point(path: str | Path) -> dict[str, Any]:
    """One rate point (a row of rd.csv) from a metrics.json, keeping the metrics under ``_metrics``."""
    path = Path(path)
    metrics = read_metrics(path)
    missing = [key for key in ("psnr_rgb", "psnr_y", "bytes", "bpp") if key not in metrics]
    if missing:
        raise LfcompError(path, f"metrics lack {', '.join(missing)} (not a coded rate point?)")
    codec = codec_of(metrics, path)
    rate_point = metrics.get("rate_point") or {}
    rank, centroids, qp = rate_point.get("rank"), rate_point.get("centroids"), metrics.get("qp")
    layout = neural_layout(path)
    if codec.startswith("qdlr-") and (rank is None or centroids is None) and layout:
        rank, centroids = layout[2], layout[3]
    if qp is not None:
        label = f"qp{qp}"
    elif rank is not None or centroids is not None:
        label = f"r{rank}-n{centroids}"
    else:
        label = path.parent.name
    return {
        "scene": scene_of(metrics, path), "codec": codec, "rate_point": label, "qp": qp, "rank": rank,
        "centroids": centroids, "bytes": metrics["bytes"], "bits": metrics.get("bits", 8 * metrics["bytes"]),
        "bpp": metrics["bpp"], "psnr_rgb": metrics["psnr_rgb"], "psnr_y": metrics["psnr_y"],
        "encode_seconds": metrics.get("encode_seconds"), "decode_seconds": metrics.get("decode_seconds"),
        "scan": metrics.get("scan"), "metrics": str(path), "_metrics": metrics,
    }


def load_points(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every rate point, sorted by scene, codec and bpp; the same point twice is an error."""
    if not paths:
        raise LfcompError("report", "no metrics.json given")
    points = [load_point(p) for p in paths]
    seen: dict[tuple, str] = {}
    for point in points:
        key = (point["scene"], point["codec"], point["rate_point"])
        if key in seen:
            raise LfcompError(point["metrics"], f"same scene, codec and rate point as {seen[key]} "
                                                f"({key[0]}, {key[1]}, {key[2]})")
        seen[key] = point["metrics"]
    return sorted(points, key=lambda p: (p["scene"], _codec_rank(p["codec"]), p["codec"], p["bpp"]))


def _codec_rank(codec: str) -> int:
    """Table order: HEVC anchors, other anchors, then the neural codecs last (as in Table 1):
    qdlr-nerf, then the other kinds."""
    if codec.startswith("qdlr-"):
        return 2 if codec == NEURAL else 3
    return 0 if codec.startswith("hevc") else 1


def _kind(codec: str) -> str:
    """The model kind of a neural codec label (``qdlr-nelf`` → ``nelf``)."""
    return codec.removeprefix("qdlr-")


# --------------------------------------------------------------------------- tables


def bd_rows(points: list[dict[str, Any]], anchors: tuple[str, ...] = DEFAULT_ANCHORS,
            rate_range: tuple[float, float] = DEFAULT_RATE_RANGE,
            distortions: tuple[str, ...] = DISTORTIONS) -> list[dict[str, Any]]:
    """Rows of bd_psnr.csv: every codec against every anchor, per scene, then the average over scenes."""
    scenes = list(dict.fromkeys(p["scene"] for p in points))
    codecs = sorted({p["codec"] for p in points}, key=lambda c: (_codec_rank(c), c))
    rows: list[dict[str, Any]] = []
    for anchor in anchors:
        for distortion in distortions:
            for codec in codecs:
                if codec == anchor:
                    continue
                scene_rows = [_bd_row(points, scene, anchor, codec, distortion, rate_range) for scene in scenes]
                scene_rows = [r for r in scene_rows if r is not None]
                if scene_rows:
                    rows += scene_rows + [_average_row(scene_rows, anchor, codec, distortion)]
    return rows


def _curve(points: list[dict[str, Any]], scene: str, codec: str, distortion: str) -> tuple[list, list]:
    chosen = [p for p in points if p["scene"] == scene and p["codec"] == codec and p[distortion] is not None]
    return [p["bpp"] for p in chosen], [p[distortion] for p in chosen]


_METRIC_NAMES = {"psnr": "BD-PSNR", "rate": "BD-rate"}


def _bd_row(points, scene, anchor, codec, distortion, rate_range) -> dict[str, Any] | None:
    rate_t, psnr_t = _curve(points, scene, codec, distortion)
    if not any(p["scene"] == scene and p["codec"] == codec for p in points):
        return None  # this codec did not run on this scene
    rate_a, psnr_a = _curve(points, scene, anchor, distortion)
    row: dict[str, Any] = {"scene": scene, "anchor": anchor, "codec": codec, "distortion": distortion,
                           "anchor_points": len(rate_a), "test_points": len(rate_t), "scenes": 1,
                           "bpp_low": None, "bpp_high": None}
    if not rate_a:
        for metric in ("psnr", "rate"):
            for method in METHODS:
                row[f"bd_{metric}_{method}"] = None
        note = f"no {anchor} rate points for {scene}"
        row["note"], row["_notes"] = note, {"psnr": note, "rate": note}
        row["_codes"] = {"psnr": {"missing"}, "rate": {"missing"}}
        return row
    results = bd_all(rate_a, psnr_a, rate_t, psnr_t, rate_range)
    row["_notes"], row["_codes"] = {}, {}
    for metric in ("psnr", "rate"):
        reasons: dict[str, list[str]] = {}  # reason → methods it applies to
        for method in METHODS:
            result = results[f"{metric}_{method}"]
            row[f"bd_{metric}_{method}"] = None if result.value is None else round(result.value, 4)
            if result.value is None:
                reasons.setdefault(result.reason, []).append(method)
        row["_notes"][metric] = "; ".join(f"{_METRIC_NAMES[metric]} {'/'.join(methods)}: {reason}"
                                          for reason, methods in reasons.items())
        row["_codes"][metric] = {r.code for k, r in results.items() if k.startswith(metric) and r.code}
    primary = results["psnr_cubic"] if results["psnr_cubic"].interval else results["psnr_pchip"]
    if primary.interval:
        row["bpp_low"], row["bpp_high"] = (round(x, 6) for x in primary.interval)
    row["note"] = "; ".join(n for n in row["_notes"].values() if n)
    return row


def _average_row(rows: list[dict[str, Any]], anchor: str, codec: str, distortion: str) -> dict[str, Any]:
    average: dict[str, Any] = {"scene": "average", "anchor": anchor, "codec": codec, "distortion": distortion,
                               "anchor_points": None, "test_points": None, "bpp_low": None, "bpp_high": None,
                               "_notes": {}, "_codes": {}}
    counts: dict[str, int] = {}
    for metric in ("psnr", "rate"):
        for method in METHODS:
            key = f"bd_{metric}_{method}"
            values = [r[key] for r in rows if r[key] is not None]
            average[key] = round(sum(values) / len(values), 4) if values else None
            counts[f"{metric} {method}"] = len(values)
        metric_counts = {n for k, n in counts.items() if k.startswith(metric)}
        if metric_counts == {0}:
            note = f"no scene gives a value (of {len(rows)})"
            average["_codes"][metric] = set.union(*(r["_codes"][metric] for r in rows))
        elif metric_counts == {len(rows)}:
            note = ""
        elif len(metric_counts) == 1:
            note = f"mean of {metric_counts.pop()} of {len(rows)} scenes"
        else:
            note = "; ".join(f"{_METRIC_NAMES[metric]} {k.split()[1]}: mean of {n} of {len(rows)} scenes"
                             for k, n in counts.items() if k.startswith(metric) and n < len(rows))
        average["_notes"][metric] = note
    average["scenes"] = counts[f"psnr {METHODS[0]}"]
    average["note"] = "; ".join(dict.fromkeys(n for n in average["_notes"].values() if n))
    return average


def stage_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of stages.csv: PSNR, parameters and size (% of the -org model) after each stage of each
    neural codec, per scene and rate point, then per codec and rate point averaged over scenes
    (scene = ``average``). The titles are the kind's: NeRF-org … QDLR-NeRF, NeLF-org … QDLR-NeLF."""
    per_scene: list[dict[str, Any]] = []
    for point in points:
        stages = point["_metrics"].get("stages")
        if not point["codec"].startswith("qdlr-") or not stages:
            continue
        titles = stage_titles(_kind(point["codec"]))
        for stage in STAGES:
            report = stages.get(stage) or {}
            size = report.get("size_percent")
            if size is None and stage == "nerf" and report:
                size = 100.0
            per_scene.append({"scene": point["scene"], "codec": point["codec"], "rank": point["rank"],
                              "centroids": point["centroids"],
                              "stage": stage, "title": titles[stage], "psnr_rgb": report.get("psnr_rgb"),
                              "params": report.get("params"), "size_percent": size, "scenes": 1})
    averages = []
    keys = list(dict.fromkeys((r["codec"], r["rank"], r["centroids"]) for r in per_scene))
    for codec, rank, centroids in keys:
        titles = stage_titles(_kind(codec))
        for stage in STAGES:
            group = [r for r in per_scene if (r["codec"], r["rank"], r["centroids"], r["stage"])
                     == (codec, rank, centroids, stage)]
            row = {"scene": "average", "codec": codec, "rank": rank, "centroids": centroids, "stage": stage,
                   "title": titles[stage]}
            for key in ("psnr_rgb", "params", "size_percent"):
                values = [r[key] for r in group if r[key] is not None]
                row[key] = round(sum(values) / len(values), 4) if values else None
            row["scenes"] = sum(1 for r in group if r["psnr_rgb"] is not None)
            averages.append(row)
    return per_scene + averages


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _cell(row: dict[str, Any], metric: str) -> tuple[str, float | None]:
    """'primary (pchip)' text of a BD cell and its primary value; the reason where there is none."""
    cubic, pchip = row[f"bd_{metric}_cubic"], row[f"bd_{metric}_pchip"]
    if cubic is None and pchip is None:
        codes = (row.get("_codes") or {}).get(metric) or set()
        text = next((_SHORT[c] for c in ("missing", "no_overlap", "outside_range", "few_points", "bad_rate")
                     if c in codes), "n/c")
        return text, None
    digits = 2 if metric == "psnr" else 1
    main = _fmt(cubic, digits) if cubic is not None else "n/c"
    return f"{main} ({_fmt(pchip, digits)})", cubic


def bd_markdown(rows: list[dict[str, Any]], rate_range: tuple[float, float] = DEFAULT_RATE_RANGE,
                distortions: tuple[str, ...] = DISTORTIONS) -> str:
    """Table-1-style Markdown: per anchor and distortion, scenes × codecs of BD-PSNR (dB) and BD-rate (%)."""
    low, high = rate_range
    lines = ["# BD-PSNR and BD-rate against the HEVC anchors", "",
             f"Bjøntegaard deltas over the overlap of the two curves inside the rate range {low:g}–{high:g} bpp. "
             "Each cell: VCEG-M33 cubic fit (pchip in brackets). BD-PSNR in dB (positive: better than the anchor); "
             "BD-rate in % (negative: fewer bits than the anchor). Best per row in bold. "
             "Where no number can be computed the cell says why (notes below each table); averages are over "
             "the scenes with a value.", ""]
    for distortion in distortions:
        name = {"psnr_rgb": "RGB PSNR", "psnr_y": "Y PSNR"}.get(distortion, distortion)
        chosen = [r for r in rows if r["distortion"] == distortion]
        for anchor in dict.fromkeys(r["anchor"] for r in chosen):
            anchor_rows = [r for r in chosen if r["anchor"] == anchor]
            for metric, title, better in (("psnr", "BD-PSNR (dB)", max), ("rate", "BD-rate (%)", min)):
                lines += [f"## {title} against {anchor}, {name}", ""] + _bd_table(anchor_rows, metric, better)
    if len(lines) == 4:
        lines += ["No codec to compare with the anchors.", ""]
    return "\n".join(lines)


def _bd_table(rows: list[dict[str, Any]], metric: str, better) -> list[str]:
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    scenes = list(dict.fromkeys(r["scene"] for r in rows if r["scene"] != "average")) + ["average"]
    lines = ["| LFs | " + " | ".join(codecs) + " |", "|---|" + "---:|" * len(codecs)]
    notes: list[str] = []
    for scene in scenes:
        cells: list[str] = []
        values: list[float | None] = []
        for codec in codecs:
            row = next((r for r in rows if r["scene"] == scene and r["codec"] == codec), None)
            text, value = ("–", None) if row is None else _cell(row, metric)
            cells.append(text)
            values.append(value)
            if row is not None and row["_notes"].get(metric):
                notes.append(f"{scene}, {codec}: {row['_notes'][metric]}")
        present = [v for v in values if v is not None]
        if len(present) > 1:
            best = better(present)
            cells = [f"**{c}**" if v == best else c for c, v in zip(cells, values)]
        lines.append(f"| {'Average' if scene == 'average' else scene} | " + " | ".join(cells) + " |")
    lines.append("")
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in dict.fromkeys(notes)] + [""]
    return lines


def stages_markdown(rows: list[dict[str, Any]]) -> str:
    """Table-2-style Markdown: PSNR and size after each stage, averaged over scenes, per rate point."""
    lines = ["# PSNR and model size after each stage", "",
             "PSNR (RGB, dB) of the views rendered by each stage's model and its size in % of the "
             "unquantized full model (NeRF-org, NeLF-org; 32-bit parameters before quantization, the "
             "bitstream after it), averaged over scenes. One table per neural codec and rate point.", ""]
    averages = [r for r in rows if r["scene"] == "average"]
    if not averages:
        return "\n".join(lines + ["No neural-codec metrics with per-stage results were given.", ""])
    for codec, rank, centroids in dict.fromkeys((r["codec"], r["rank"], r["centroids"]) for r in averages):
        group = {r["stage"]: r for r in averages if (r["codec"], r["rank"], r["centroids"]) == (codec, rank, centroids)}
        scenes = max(r["scenes"] for r in group.values())
        lines += [f"## {codec}, rank {rank}, {centroids} centroids ({scenes} scene{'s' if scenes != 1 else ''})", "",
                  "| Metrics | " + " | ".join(group[s]["title"] for s in STAGES) + " |",
                  "|---|" + "---:|" * len(STAGES),
                  "| PSNR | " + " | ".join(_fmt(group[s]["psnr_rgb"], 2, "dB") for s in STAGES) + " |",
                  "| Size | " + " | ".join(_fmt(group[s]["size_percent"], 1, "%") for s in STAGES) + " |", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- output


def write_csv(rows: list[dict[str, Any]], columns: list[str], path: str | Path) -> None:
    """CSV with exactly ``columns`` (None as empty), written atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def _write_text(text: str, path: Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text if text.endswith("\n") else text + "\n")


def build_report(metrics_paths: list[str | Path], outdir: str | Path, anchors: tuple[str, ...] = DEFAULT_ANCHORS,
                 rate_range: tuple[float, float] = DEFAULT_RATE_RANGE) -> dict[str, Path]:
    """Write rd.csv, bd_psnr.csv/.md and stages.csv/.md into ``outdir``; returns their paths."""
    points = load_points(list(metrics_paths))
    out = Path(outdir)
    paths = {name: out / name for name in ("rd.csv", "bd_psnr.csv", "bd_psnr.md", "stages.csv", "stages.md")}
    write_csv(points, RD_COLUMNS, paths["rd.csv"])
    bd = bd_rows(points, anchors, rate_range)
    write_csv(bd, BD_COLUMNS, paths["bd_psnr.csv"])
    _write_text(bd_markdown(bd, rate_range), paths["bd_psnr.md"])
    stages = stage_rows(points)
    write_csv(stages, STAGE_COLUMNS, paths["stages.csv"])
    _write_text(stages_markdown(stages), paths["stages.md"])
    return paths

"""Summary tables of every codec and anchor (``results/summary/``) from metrics.json files.

``build_report(metrics_paths, outdir)`` writes

* ``rd.csv``: one row per scene × codec × rate point (bytes, bits, the target bpp of a point made
  for one, bpp, PSNR RGB and Y, encode and decode seconds where known), with the anchors' ``qp``
  and the registered codecs' rate parameters (QDLR: rank, centroids) as columns;
* ``bd_psnr.csv`` and ``bd_psnr.md`` (like the paper's Table 1): BD-PSNR and BD-rate of every
  codec against each HEVC anchor, per scene and averaged over scenes, with the VCEG-M33 cubic
  fit as the primary figure and pchip beside it, over the overlap of the curves inside
  (0, 0.2] bpp (``lfcomp.evaluation.bd``). Where a value cannot be computed (a single rate point, curves
  that do not overlap, …) the row says why instead of giving a number;
* ``stages.csv`` and ``stages.md`` (like Table 2): PSNR and model size (% of NeRF-org) after
  each report stage of the codecs that have them (``Codec.report_stages()``), per scene and
  averaged over scenes, per rate point.

Every codec label (``qdlr-nerf``, the paper's, ``qdlr-nelf``, any other registered codec) and
every anchor (``hevc444``) is a codec of its own: its own RD curve, BD rows against each anchor and
stage table. The metrics are read by ``lfcomp.evaluation.results``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lfcomp.codecs import registry
from lfcomp.evaluation.bd import DEFAULT_RATE_RANGE, METHODS, bd_all
from lfcomp.evaluation.results import ANCHOR_RATE, FLOOR_ANCHOR, RatePoint, codec_rank, load_points, rate_names
from lfcomp.evaluation.floors import FLOORS
from lfcomp.evaluation.tables import BELOW, MISSING, fmt, markdown_table, write_csv, write_text

__all__ = ["BD_COLUMNS", "DEFAULT_ANCHORS", "bd_markdown", "bd_rows", "build_report", "describe_rate", "rd_columns",
           "rd_row", "stage_columns", "stage_rows", "stages_markdown"]

DEFAULT_ANCHORS = ("hevc444", "hevc420")
DISTORTIONS = ("psnr_rgb", "psnr_y")

BD_COLUMNS = ["scene", "anchor", "codec", "distortion",
              *(f"bd_{m}_{f}" for m in ("psnr", "rate") for f in METHODS),
              "bpp_low", "bpp_high", "anchor_points", "test_points", "scenes", "note"]
_SHORT = {"few_points": "n/c: too few points", "no_overlap": "no overlap", "outside_range": "outside range",
          "bad_rate": "n/c: bad rate", "missing": "no anchor"}


def rd_columns() -> list[str]:
    """The columns of rd.csv: the anchors' QP and every registered codec's rate parameters."""
    rates = list(dict.fromkeys([ANCHOR_RATE, *rate_names()]))
    return ["scene", "codec", "rate_point", *rates, "bytes", "bits", "target_bpp", "bpp", "psnr_rgb", "psnr_y",
            "encode_seconds", "decode_seconds", "scan", "metrics"]


def stage_columns() -> list[str]:
    """The columns of stages.csv: the rate parameters of the codecs with report stages."""
    staged = [codec for codec in registry.CODECS.values() if codec.report_stages()]
    return ["scene", "codec", *rate_names(staged), "stage", "title", "psnr_rgb", "params", "size_percent",
            "below_floors", *(f"floor_{name}" for name in FLOORS), "scenes"]


def rd_row(point: RatePoint) -> dict[str, Any]:
    """A row of rd.csv."""
    return {"scene": point.scene, "codec": point.codec, "rate_point": point.rate_point, **point.rate,
            "bytes": point.bytes, "bits": point.bits, "target_bpp": point.target_bpp, "bpp": point.bpp,
            "psnr_rgb": point.psnr_rgb, "psnr_y": point.psnr_y, "encode_seconds": point.encode_seconds,
            "decode_seconds": point.decode_seconds, "scan": point.scan, "metrics": str(point.path)}


# --------------------------------------------------------------------------- Table 1


def bd_rows(points: list[RatePoint], anchors: tuple[str, ...] = DEFAULT_ANCHORS,
            rate_range: tuple[float, float] = DEFAULT_RATE_RANGE,
            distortions: tuple[str, ...] = DISTORTIONS) -> list[dict[str, Any]]:
    """Rows of bd_psnr.csv: every codec against every anchor, per scene, then the average over scenes
    (the floor anchors, ``centre_*``, are drawn on the RD figures but are not compared here)."""
    scenes = list(dict.fromkeys(p.scene for p in points))
    ranks = {p.codec: codec_rank(p) for p in points if not p.codec.startswith(FLOOR_ANCHOR)}
    codecs = sorted(ranks, key=ranks.__getitem__)
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


def _curve(points: list[RatePoint], scene: str, codec: str, distortion: str) -> tuple[list, list]:
    chosen = [p for p in points if p.scene == scene and p.codec == codec and getattr(p, distortion) is not None]
    return [p.bpp for p in chosen], [getattr(p, distortion) for p in chosen]


_METRIC_NAMES = {"psnr": "BD-PSNR", "rate": "BD-rate"}


def _bd_row(points: list[RatePoint], scene: str, anchor: str, codec: str, distortion: str,
            rate_range: tuple[float, float]) -> dict[str, Any] | None:
    rate_t, psnr_t = _curve(points, scene, codec, distortion)
    if not any(p.scene == scene and p.codec == codec for p in points):
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


def _cell(row: dict[str, Any], metric: str) -> tuple[str, float | None]:
    """'primary (pchip)' text of a BD cell and its primary value; the reason where there is none."""
    cubic, pchip = row[f"bd_{metric}_cubic"], row[f"bd_{metric}_pchip"]
    if cubic is None and pchip is None:
        codes = (row.get("_codes") or {}).get(metric) or set()
        text = next((_SHORT[c] for c in ("missing", "no_overlap", "outside_range", "few_points", "bad_rate")
                     if c in codes), "n/c")
        return text, None
    digits = 2 if metric == "psnr" else 1
    main = fmt(cubic, digits) if cubic is not None else "n/c"
    return f"{main} ({fmt(pchip, digits)})", cubic


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
    table: list[list[str]] = []
    notes: list[str] = []
    for scene in scenes:
        cells: list[str] = []
        values: list[float | None] = []
        for codec in codecs:
            row = next((r for r in rows if r["scene"] == scene and r["codec"] == codec), None)
            text, value = (MISSING, None) if row is None else _cell(row, metric)
            cells.append(text)
            values.append(value)
            if row is not None and row["_notes"].get(metric):
                notes.append(f"{scene}, {codec}: {row['_notes'][metric]}")
        present = [v for v in values if v is not None]
        if len(present) > 1:
            best = better(present)
            cells = [f"**{c}**" if v == best else c for c, v in zip(cells, values)]
        table.append(["Average" if scene == "average" else scene, *cells])
    lines = markdown_table(["LFs", *codecs], table, "l" + "r" * len(codecs)) + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in dict.fromkeys(notes)] + [""]
    return lines


# --------------------------------------------------------------------------- Table 2


def stage_rows(points: list[RatePoint]) -> list[dict[str, Any]]:
    """Rows of stages.csv: PSNR, parameters and size (% of the first stage's model) after each report
    stage of each codec, per scene and rate point, then per codec and rate point averaged over scenes
    (scene = ``average``). The titles are the kind's: NeRF-org … QDLR-NeRF, NeLF-org … QDLR-NeLF."""
    per_scene = [{"scene": point.scene, "codec": point.codec, **point.rate, "stage": stage.key, "title": stage.title,
                  "psnr_rgb": stage.psnr_rgb, "params": stage.params, "size_percent": stage.size_percent,
                  "below_floors": " ".join(stage.below_floors), "scenes": 1, "_rate": point.rate,
                  **{f"floor_{name}": point.floors.get(name) for name in FLOORS}}
                 for point in points for stage in point.stages]
    averages = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in per_scene:
        groups.setdefault((row["codec"], tuple(row["_rate"].items())), []).append(row)
    for (codec, _), group in groups.items():
        rate = group[0]["_rate"]
        for stage, title in dict.fromkeys((r["stage"], r["title"]) for r in group):
            stage_group = [r for r in group if r["stage"] == stage]
            row = {"scene": "average", "codec": codec, **rate, "stage": stage, "title": title, "_rate": rate}
            for key in ("psnr_rgb", "params", "size_percent", *(f"floor_{name}" for name in FLOORS)):
                values = [r[key] for r in stage_group if r[key] is not None]
                row[key] = round(sum(values) / len(values), 4) if values else None
            row["scenes"] = sum(1 for r in stage_group if r["psnr_rgb"] is not None)
            row["below_floors"] = " ".join(dict.fromkeys(n for r in stage_group for n in r["below_floors"].split()))
            averages.append(row)
    return per_scene + averages


def describe_rate(rate: dict[str, Any]) -> str:
    """A rate point in words: a plural name counts (``256 centroids``), others name a value (``rank 22``)."""
    return ", ".join(f"{value} {name}" if name.endswith("s") else f"{name} {value}" for name, value in rate.items())


def stages_markdown(rows: list[dict[str, Any]]) -> str:
    """Table-2-style Markdown: PSNR and size after each stage, averaged over scenes, per codec and rate point."""
    lines = ["# PSNR and model size after each stage", "",
             "PSNR (RGB, dB) of the views rendered by each stage's model and its size in % of the "
             "unquantized full model (NeRF-org, NeLF-org; 32-bit parameters before quantization, the "
             "bitstream after it), averaged over scenes. One table per neural codec and rate point. "
             f"{BELOW} marks a stage whose model ends below one of a scene's trivial floors (the scene's "
             "views sent as one image: the centre view, or the mean image).", ""]
    averages = [r for r in rows if r["scene"] == "average"]
    if not averages:
        return "\n".join(lines + ["No neural-codec metrics with per-stage results were given.", ""])
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in averages:
        groups.setdefault((row["codec"], tuple(row["_rate"].items())), []).append(row)
    for (codec, rate), group in groups.items():
        scenes = max(r["scenes"] for r in group)
        header = ["Metrics", *(r["title"] for r in group)]
        table = [["PSNR", *(fmt(r["psnr_rgb"], 2, "dB") + (BELOW if r["below_floors"] else "") for r in group)],
                 ["Size", *(fmt(r["size_percent"], 1, "%") for r in group)]]
        lines += [f"## {codec}, {describe_rate(dict(rate))} ({scenes} scene{'s' if scenes != 1 else ''})", ""]
        lines += markdown_table(header, table, "l" + "r" * len(group)) + [""]
        floors = [f"{FLOORS[name]}: {fmt(group[0].get(f'floor_{name}'), 2)} dB" for name in FLOORS
                  if group[0].get(f"floor_{name}") is not None]
        if floors:
            lines += ["Floors: " + "; ".join(floors) + ".", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- output


def build_report(metrics_paths: list[str | Path], outdir: str | Path, anchors: tuple[str, ...] = DEFAULT_ANCHORS,
                 rate_range: tuple[float, float] = DEFAULT_RATE_RANGE) -> dict[str, Path]:
    """Write rd.csv, bd_psnr.csv/.md and stages.csv/.md into ``outdir``; returns their paths."""
    points = load_points(list(metrics_paths))
    out = Path(outdir)
    paths = {name: out / name for name in ("rd.csv", "bd_psnr.csv", "bd_psnr.md", "stages.csv", "stages.md")}
    write_csv([rd_row(point) for point in points], rd_columns(), paths["rd.csv"])
    bd = bd_rows(points, anchors, rate_range)
    write_csv(bd, BD_COLUMNS, paths["bd_psnr.csv"])
    write_text(bd_markdown(bd, rate_range), paths["bd_psnr.md"])
    stages = stage_rows(points)
    write_csv(stages, stage_columns(), paths["stages.csv"])
    write_text(stages_markdown(stages), paths["stages.md"])
    return paths

"""The one loader of metrics.json: every rate point of every codec and anchor, as ``RatePoint``.

A metrics.json is written by ``lfcomp evaluate`` (a codec of ``lfcomp.codecs.registry``) or by
``lfcomp anchor`` (a video-codec anchor). Its codec is

* its ``codec`` key where that names a registered codec (with its ``model_kind`` when the codec
  runs on model kinds): label ``qdlr-nerf``, or the codec's name for a codec without kinds;
* else its ``anchor`` key (``hevc444``), rate point ``qp{qp}``;
* else QDLR, on its ``model_kind`` (files from before the ``codec`` key).

A codec's rate point is its metrics' ``rate_point`` (``{"rank": 22, "centroids": 256}``), named
by the registry (``r22-n256``). Where the metrics lack the scene, the model kind or the rate
point, they come from the workflow layout, ``results/{scene}/{model}/r{rank}/n{centroids}/``
(``{model}``: the kind, or the codec's name for a codec without kinds) or
``results/{scene}/{anchor}/qp{qp}/``; outside it the scene is the file's directory. Tables list
the HEVC anchors first, then the other anchors, then the codecs in registry order.

A metrics.json is untrusted input: an unreadable file, missing keys or a value of the wrong type
(a non-finite or negative rate, a target bpp that is not a finite rate above 0, a PSNR that is
not a number, a malformed grid, rate point or stage report) is a one-line ``LfcompError`` naming
it, before any table or figure is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfcomp.codecs import registry
from lfcomp.codecs.registry import QDLR, Codec
from lfcomp.errors import LfcompError, short_repr
from lfcomp.evaluation.metrics import read_metrics

__all__ = ["ANCHOR_RATE", "RatePoint", "StageResult", "codec_rank", "load_point", "load_points", "rate_names",
           "stage_keys"]

ANCHOR_RATE = "qp"  # an anchor's rate parameter: its constant QP
HEVC = "hevc"  # labels of the HEVC anchors, the references of the BD tables, start so
REQUIRED = ("psnr_rgb", "psnr_y", "bytes", "bpp")
FLOOR_ANCHOR = "centre_"  # labels of the anchors that send one coded view to every view: floors, not codecs


@dataclass(frozen=True)
class StageResult:
    """A codec stage's report (a column of Table 2): PSNR and size of the stage's model.

    ``size_percent`` is the model's size in % of the first stage's (the unquantized ``-org``
    model, itself 100 %)."""

    key: str  # the report key in the metrics' stages: nerf, lowrank, distill, quantize
    title: str  # NeRF-org, LR-NeRF, ...
    psnr_rgb: float | None
    params: int | None
    size_percent: float | None
    below_floors: tuple[str, ...] = ()  # the scene's trivial floors this stage's model does not beat


@dataclass(frozen=True)
class RatePoint:
    """One rate point of one codec or anchor on one scene: a row of rd.csv and summary.csv."""

    scene: str
    codec: str  # label in tables and plots: qdlr-nerf, hevc444
    rate_point: str  # name in tables: r22-n256, qp32
    rate: dict[str, Any]  # rate parameters: {"rank": 22, "centroids": 256}, {"qp": 32}
    bytes: int
    bits: int
    bpp: float
    psnr_rgb: float | None
    psnr_y: float | None
    path: Path  # the metrics.json, as given
    entry: Codec | None = None  # its codec in the registry; None for an anchor
    kind: str | None = None  # model kind: nerf, nelf; None for an anchor or a codec without kinds
    params: int | None = None  # parameters of the coded model
    size_percent: float | None = None  # coded size in % of the first stage's model
    stages: tuple[StageResult, ...] = ()  # the codec's report stages, in order; () without reports
    grid: tuple[int, int] | None = None  # U, V
    size: tuple[int, int] | None = None  # H, W
    encode_seconds: float | None = None
    decode_seconds: float | None = None
    target_bpp: float | None = None  # the rate it was made for (lfcomp evaluate --target-bpp); bpp: what it achieved
    scan: str | None = None
    floors: dict[str, float | None] = field(default_factory=dict)  # the scene's floors: name → PSNR RGB
    below_floors: tuple[str, ...] = ()  # the floors this rate point does not beat
    metrics: dict[str, Any] = field(default_factory=dict, repr=False)  # the metrics.json as read

    def stage_titles(self) -> dict[str, str]:
        """{report key: title} of its codec's report stages (NeRF-org, ...); {} for an anchor."""
        if self.entry is None:
            return {}
        return self.entry.stage_titles(self.kind or self.entry.name)


def rate_names(codecs: Iterable[Codec] | None = None) -> list[str]:
    """Rate parameter names of ``codecs`` (default: every registered codec), in registry order:
    the rate columns of the tables."""
    codecs = registry.CODECS.values() if codecs is None else codecs
    return list(dict.fromkeys(p.name for codec in codecs for p in codec.rate_parameters))


def stage_keys(codecs: Iterable[Codec] | None = None) -> list[str]:
    """Report keys of the stages of ``codecs`` (default: every registered codec), in order."""
    codecs = registry.CODECS.values() if codecs is None else codecs
    return list(dict.fromkeys(stage.report for codec in codecs for stage in codec.report_stages()))


def codec_rank(point: RatePoint) -> tuple[int, int, str]:
    """Sort key of a point's codec in tables (as in Table 1): HEVC anchors, other anchors, then
    the codecs in registry order (``codec_labels()``), a kind the registry lacks last."""
    if point.entry is None:
        return (0 if point.codec.startswith(HEVC) else 1), 0, point.codec
    labels = registry.codec_labels()
    return 2, (labels.index(point.codec) if point.codec in labels else len(labels)), point.codec


def load_points(paths: Sequence[str | Path]) -> list[RatePoint]:
    """Every rate point of ``paths``, sorted by scene, codec and bpp; an unreadable file, missing
    keys or the same (scene, codec, rate point) twice is a one-line ``LfcompError``."""
    if not paths:
        raise LfcompError("metrics", "no metrics.json given")
    points = [load_point(p) for p in paths]
    seen: dict[tuple[str, str, str], Path] = {}
    for point in points:
        key = (point.scene, point.codec, point.rate_point)
        if key in seen:
            raise LfcompError(point.path, f"same scene, codec and rate point as {seen[key]} ({', '.join(key)})")
        seen[key] = point.path
    return sorted(points, key=_sort_key)


def _sort_key(point: RatePoint) -> tuple:
    ties = tuple(-value if isinstance(value, (int, float)) else 0 for value in point.rate.values())
    return point.scene, codec_rank(point), point.bpp, ties  # equal bpp: the larger rate point first


def load_point(path: str | Path) -> RatePoint:
    """One rate point from a metrics.json (see the module's docstring for how it is read)."""
    path = Path(path)
    metrics = read_metrics(path)
    missing = [key for key in REQUIRED if key not in metrics]
    if missing:
        raise LfcompError(path, f"metrics lack {', '.join(missing)} (not a coded rate point?)")
    problem = _malformed(metrics)
    if problem:
        raise LfcompError(path, f"malformed metrics: {problem}")
    entry = _registered(metrics, path)
    if entry is None:
        scene, codec, kind, rate, label = _anchor(metrics, path)
        stages: tuple[StageResult, ...] = ()
    else:
        scene, codec, kind, rate, label = _coded(entry, metrics, path)
        stages = _stages(entry, kind, metrics.get("stages") or {})
    params = metrics.get("params", stages[-1].params if stages else None)
    return RatePoint(
        scene=str(metrics.get("scene") or scene), codec=codec, rate_point=label,
        rate=rate, bytes=metrics["bytes"], bits=metrics.get("bits", 8 * metrics["bytes"]), bpp=metrics["bpp"],
        psnr_rgb=metrics["psnr_rgb"], psnr_y=metrics["psnr_y"], path=path, entry=entry, kind=kind, params=params,
        size_percent=_size_percent(stages, params), stages=stages, grid=_pair(metrics.get("grid")),
        size=_pair(metrics.get("size")), encode_seconds=metrics.get("encode_seconds"),
        decode_seconds=metrics.get("decode_seconds"), target_bpp=metrics.get("target_bpp"), scan=metrics.get("scan"),
        floors={name: floor.get("psnr_rgb") for name, floor in (metrics.get("floors") or {}).items()},
        below_floors=tuple(metrics.get("below_floors") or ()), metrics=metrics)


def _number(value: Any, low: float = -math.inf) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and value >= low



def _malformed(metrics: dict[str, Any]) -> str | None:
    """What is wrong with the values the tables and figures read; None when nothing is."""
    def optional(key: str, ok: Any) -> str | None:
        value = metrics.get(key)
        return None if value is None or ok(value) else f"{key} = {short_repr(value)}"

    def pair(value: Any) -> bool:
        return isinstance(value, list) and len(value) == 2 and all(type(v) is int and v > 0 for v in value)

    def per_view(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(row, list) and all(v is None or _number(v) for v in row)
                                               for row in value)

    def names(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(name, str) for name in value)

    def report(value: Any) -> bool:
        return value is None or (isinstance(value, dict) and all(value.get(k) is None or _number(value[k])
                                                                 for k in ("psnr_rgb", "params", "size_percent"))
                                 and (value.get("below_floors") is None or names(value["below_floors"])))

    def floors(value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(f, dict) and (f.get("psnr_rgb") is None or _number(f["psnr_rgb"]))
                                               for f in value.values())

    checks = [
        None if type(metrics["bytes"]) is int and metrics["bytes"] >= 0 else f"bytes = {short_repr(metrics['bytes'])}",
        None if _number(metrics["bpp"], 0.0) else f"bpp = {short_repr(metrics['bpp'])}",
        optional("target_bpp", lambda v: _number(v) and v > 0),
        optional("bits", lambda v: type(v) is int and v >= 0),
        optional("psnr_rgb", _number), optional("psnr_y", _number),
        optional("grid", pair), optional("size", pair),
        optional("params", lambda v: type(v) is int and v >= 0),
        optional("encode_seconds", lambda v: _number(v, 0.0)), optional("decode_seconds", lambda v: _number(v, 0.0)),
        optional("psnr_rgb_views", per_view), optional("psnr_y_views", per_view),
        optional("scene", lambda v: isinstance(v, str)), optional("scan", lambda v: isinstance(v, str)),
        optional("model_kind", lambda v: isinstance(v, str)), optional("anchor", lambda v: isinstance(v, str)),
        optional("qp", _number),
        optional("rate_point", lambda v: isinstance(v, dict) and all(x is None or _number(x) for x in v.values())),
        optional("stages", lambda v: isinstance(v, dict) and all(map(report, v.values()))),
        optional("floors", floors), optional("below_floors", names),
    ]
    return next((problem for problem in checks if problem), None)


def _registered(metrics: dict[str, Any], path: Path) -> Codec | None:
    """The registered codec that wrote ``metrics``; None for an anchor's."""
    name = metrics.get("codec")
    if isinstance(name, str) and name in registry.CODECS:
        return registry.CODECS[name]
    if metrics.get("anchor"):
        return None  # an anchor's `codec` is its video codec (hevc), not a registered one
    if name is not None:
        return registry.get_codec(str(name), where=str(path))  # an unknown codec: a one-line error
    return registry.CODECS[QDLR.name]  # written before metrics named their codec


def _anchor(metrics: dict[str, Any], path: Path) -> tuple[str, str, None, dict[str, Any], str]:
    """(scene from the layout, codec label, kind, rate, rate-point label) of an anchor's metrics."""
    label, qp = str(metrics["anchor"]), metrics.get(ANCHOR_RATE)
    parts = path.parent.parts
    in_layout = len(parts) >= 3 and parts[-2] == label and parts[-1].startswith(ANCHOR_RATE)
    scene = parts[-3] if in_layout else path.parent.name
    return scene, label, None, {ANCHOR_RATE: qp}, (f"{ANCHOR_RATE}{qp}" if qp is not None else path.parent.name)


def _coded(entry: Codec, metrics: dict[str, Any], path: Path) -> tuple[str, str, str | None, dict[str, Any], str]:
    """(scene from the layout, codec label, kind, rate, rate-point label) of a registered codec's metrics."""
    layout = _layout(entry, path)
    scene, layout_kind, layout_rate = layout or (path.parent.name, None, {})
    kind = None
    if entry.model_kinds:
        kind = metrics.get("model_kind") or layout_kind or entry.model_kinds[0]
    given = metrics.get("rate_point") or {}
    rate = {p.name: given.get(p.name) for p in entry.rate_parameters}
    if layout and any(value is None for value in rate.values()):
        rate = layout_rate
    known = any(value is not None for value in rate.values())
    label = entry.rate_point_label({**rate, "target_bpp": metrics.get("target_bpp")}) if known else path.parent.name
    return scene, entry.label(kind), kind, rate, label


def _layout(entry: Codec, path: Path) -> tuple[str, str | None, dict[str, Any]] | None:
    """(scene, kind, rate) of ``results/{scene}/{model}/{rate point dirs}/metrics.json``, where
    ``{model}`` is one of the codec's kinds (its name for a codec without kinds); None elsewhere."""
    parts = path.parent.parts
    count = len(entry.rate_parameters)
    if len(parts) < count + 2:
        return None
    rate: dict[str, Any] = {}
    for parameter, part in zip(entry.rate_parameters, parts[len(parts) - count:]):
        if not part.startswith(parameter.prefix):
            return None
        try:
            rate[parameter.name] = parameter.type(part[len(parameter.prefix):])
        except ValueError:
            return None
    scene, model = parts[-count - 2], parts[-count - 1]
    if model not in (entry.model_kinds or (entry.name,)):
        return None
    return scene, (model if entry.model_kinds else None), rate


def _stages(entry: Codec, kind: str | None, reports: dict[str, Any]) -> tuple[StageResult, ...]:
    """The codec's report stages from the metrics' ``stages``; () where the metrics have none."""
    if not reports:
        return ()
    titles = entry.stage_titles(kind or entry.name)
    results = []
    for index, (key, title) in enumerate(titles.items()):
        report = reports.get(key) or {}
        size = report.get("size_percent")
        if size is None and index == 0 and report:
            size = 100.0  # the first stage's model is the reference of the sizes
        results.append(StageResult(key, title, report.get("psnr_rgb"), report.get("params"), size,
                                   tuple(report.get("below_floors") or ())))
    return tuple(results)


def _size_percent(stages: tuple[StageResult, ...], params: int | None) -> float | None:
    """Coded size in % of the first stage's model: the last stage's own figure (which can count
    bits), else the ratio of parameter counts."""
    if not stages:
        return None
    if stages[-1].size_percent is not None:
        return stages[-1].size_percent
    if stages[0].params and params is not None:
        return 100.0 * params / stages[0].params
    return None


def _pair(values: Any) -> tuple[Any, Any] | None:
    return (values[0], values[1]) if values else None

"""The size of a QDLR bitstream before any training, and the rate points that hit target bitrates.

A QDLR rate point is a model size, ``(rank, centroids)``; what it costs in bits follows from the
architecture. Everything in the bitstream but the Huffman-coded weights is known exactly from the
spec: the deflated header, the camera, the codebook (4N bytes), each tensor's range, the biases'
16-bit codes (``payload.to_payload``), so it is measured by serialising a stand-in payload with
the same arrays. The Huffman part is modelled from bitstreams that lfcomp wrote:

* weights: ``log2(N) − HUFFMAN_SAVING`` bits each (k-means labels are close to uniform; the
  Huffman code saves about half a bit, the rare 16-bit outliers included);
* the deflated code table: ``CODE_TABLE_BYTES[0] + CODE_TABLE_BYTES[1]·N`` bytes.

Fitted on 7 quick-preset NeRF bitstreams of cotton128 (ranks 10 and 22, N = 16..256;
``tests/data/rate_model/measured.json``): ``tests/test_rate_model.py`` checks the prediction within
1 % on those and 6 % on the golden smoke streams (N = 8). ``plan_rate_points`` turns target bpp values into the
closest ``(rank, centroids)`` before any training, preferring a rank another target already uses
(ranks share the low-rank and distillation stages) when that costs at most ``tolerance``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lfcomp.bitstream.container import CodecPayload, bitstream_breakdown, encode_payload
from lfcomp.codecs.targets import TOLERANCE, RateTarget, check_target_bpp, pixels_of
from lfcomp.models.spec import Spec, check_spec, make_spec, saves_parameters

if TYPE_CHECKING:
    from lfcomp.config import Config

__all__ = ["CENTROID_CHOICES", "PlannedPoint", "RateEstimate", "centroids_for_target", "estimate_size", "factored_spec",
           "model_rate_points", "plan_rate_points", "rank_for_target"]

HUFFMAN_SAVING = 0.55  # bits per weight below log2(N)
CODE_TABLE_BYTES = (30.0, 0.30)  # deflated code table: a + b·N bytes
CENTROID_CHOICES = (256, 128, 64, 32, 16)  # codebook sizes a plan chooses from (the paper: 256, 64, 32)


@dataclass(frozen=True)
class RateEstimate:
    """Predicted size of one rate point's bitstream."""

    rank: int
    centroids: int
    weights: int  # weight values the Huffman code carries
    fixed_bytes: int  # exact: header, float32 and uint16 sections, framing
    bytes: int  # fixed + predicted code table and Huffman payload
    bpp: float


@dataclass(frozen=True)
class PlannedPoint:
    """The rate point chosen for a target bitrate."""

    target_bpp: float
    rank: int
    centroids: int
    predicted: RateEstimate
    feasible: bool  # False: the target lies outside what any (rank, centroids) reaches; the nearest end

    @property
    def error(self) -> float:
        """Predicted bpp / target − 1."""
        return self.predicted.bpp / self.target_bpp - 1


def factored_spec(spec: Spec, rank: int) -> Spec:
    """The spec of the distilled network at ``rank``: every slot where the rank-r factors are
    smaller than the matrix is factorized (``saves_parameters``, as ``decompose`` does)."""
    from lfcomp.models.registry import MODEL_KINDS

    shapes = MODEL_KINDS[spec["kind"]].load().slot_shapes(**spec["field"])
    out = copy.deepcopy(spec)
    out["factor_ranks"] = {name: rank for name, (n_in, n_out) in shapes.items() if saves_parameters(n_in, n_out, rank)}
    return out


def estimate_size(spec: Spec, rank: int, centroids: int) -> RateEstimate:
    """Predicted bytes of the QDLR bitstream of ``spec``'s architecture at ``(rank, centroids)``."""
    factored = factored_spec(spec, rank)
    shape = check_spec(factored)
    stand_in = CodecPayload(
        header={"spec": factored, "centroids": centroids},
        float32={"camera": np.zeros(3, np.float32), "codebook": np.zeros(centroids, np.float32),
                 "weight_ranges": np.zeros((len(shape.weight_shapes), 2), np.float32),
                 "bias_ranges": np.zeros((len(shape.bias_shapes), 2), np.float32)},
        uint16={"biases": np.zeros(shape.biases, np.uint16)},
        symbols=np.zeros(1, np.int64))
    sections = bitstream_breakdown(encode_payload(stand_in))
    fixed = sections["header"] + sections["float32"] + sections["uint16"] + sections["framing"]
    huffman = CODE_TABLE_BYTES[0] + CODE_TABLE_BYTES[1] * centroids
    huffman += shape.weights * max(math.log2(centroids) - HUFFMAN_SAVING, 1.0) / 8
    total = fixed + int(round(huffman))
    return RateEstimate(rank, centroids, shape.weights, fixed, total, 8 * total / pixels_of(spec["grid"], spec["size"]))


def plan_rate_points(spec: Spec, targets_bpp: list[float], fit: str = "closest",
                     centroid_choices: tuple[int, ...] = CENTROID_CHOICES, tolerance: float = TOLERANCE) -> list[PlannedPoint]:
    """For each target bpp, the ``(rank, centroids)`` whose predicted rate meets it best
    (``RateTarget.best``: closest on a log scale, or under ``under`` the largest not above it);
    where a rank chosen for another target also meets it (within ``tolerance``), that rank. Two
    reachable targets never share a point (when the best is taken, the next best); targets beyond
    the reachable range get its nearest end, shared. Ranks run over 1..width−1
    (``lowrank.check_rank``), each distinct network once. Targets are planned smallest first."""
    width = spec["field"]["width"]
    pixels = pixels_of(spec["grid"], spec["size"])
    ranks = [rank for rank in range(1, width) if factored_spec(spec, rank)["factor_ranks"]]
    ranks.append(ranks[-1] + 1 if ranks else 1)  # the smallest rank that factorizes nothing: the whole network
    estimates = [estimate_size(spec, rank, n) for rank in ranks for n in centroid_choices]
    estimates.sort(key=lambda e: (e.bytes, -e.centroids))  # on a tie, the larger codebook
    lowest, highest = estimates[0].bytes, estimates[-1].bytes
    chosen: list[PlannedPoint] = []
    for bpp in sorted(targets_bpp):
        target = RateTarget(bpp, pixels, fit)
        feasible = lowest <= target.bytes <= highest
        taken = {(point.rank, point.centroids) for point in chosen} if feasible else set()
        free = [e for e in estimates if (e.rank, e.centroids) not in taken] or estimates
        best = free[target.best([e.bytes for e in free])]
        ranks = {point.rank for point in chosen}
        shared = [e for e in free if e.rank in ranks and target.met_by(e.bytes, tolerance)]
        if shared and best.rank not in ranks:
            best = shared[target.best([e.bytes for e in shared])]
        chosen.append(PlannedPoint(bpp, best.rank, best.centroids, best, feasible))
    return chosen


def model_rate_points(chosen: Any, cfg: Config, grid: tuple[int, int], size: tuple[int, int]) -> list[dict[str, Any]]:
    """The rate points a model kind runs on a light field of ``grid`` views of ``size`` px, as
    ``{rank, centroids}`` (plus ``target_bpp``, ``predicted_bpp`` when planned from a target), one
    per distinct point, in the order given. ``chosen`` is the workflow config's entry: a list of
    ``[rank, centroids]``, ``{target_bpp: [...], fit: ...}``, or None for the preset's own
    (``cfg.target_bpp``, else ``cfg.rate_points``)."""
    if chosen is None:
        chosen = {"target_bpp": list(cfg.target_bpp)} if cfg.target_bpp else [list(p) for p in cfg.rate_points]
    if not isinstance(chosen, dict):
        points = [{"rank": int(rank), "centroids": int(centroids)} for rank, centroids in chosen]
    else:
        spec = make_spec(cfg.model, grid, size, cfg.camera.near, cfg.camera.far, 1.0)
        plan = plan_rate_points(spec, [check_target_bpp(t, "target_bpp") for t in chosen["target_bpp"]],
                                chosen.get("fit", "closest"))
        points = [{"rank": p.rank, "centroids": p.centroids, "target_bpp": p.target_bpp,
                   "predicted_bpp": round(p.predicted.bpp, 6)} for p in plan]
    distinct: dict[tuple[int, int], dict[str, Any]] = {}
    for point in points:
        distinct.setdefault((point["rank"], point["centroids"]), point)
    return list(distinct.values())


def rank_for_target(spec: Spec, target: RateTarget) -> PlannedPoint:
    """The planned rate point of one target (``lfcomp lowrank --target-bpp``): its rank, and the
    codebook size the quantize stage will pick for it."""
    return plan_rate_points(spec, [target.bpp], target.fit)[0]


def centroids_for_target(spec: Spec, rank: int, target: RateTarget,
                         choices: tuple[int, ...] = CENTROID_CHOICES) -> RateEstimate:
    """The codebook size that meets ``target`` best for a network of ``rank`` (``lfcomp quantize
    --target-bpp``): there the architecture is fixed, so only N is chosen."""
    estimates = [estimate_size(spec, rank, n) for n in choices]
    return estimates[target.best([e.bytes for e in estimates])]

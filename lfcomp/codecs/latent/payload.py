"""The latent codec's bitstream: what is coded, how, and the decoder's way back.

Container version 2 (``lfcomp.bitstream``): the JSON header names the codec (``latent``) and holds
the geometry, the widths of both networks, the synthesis weights' quantisation step (2^-k) and
the symbol bounds; one float32 array holds the Laplace scale of each coded weight tensor; the data
section is one range-coded stream (``constriction``): the entropy model's fixed-point weights,
the synthesis weights, then every latent grid (coarsest level first, the disparity grid last),
pass by pass, each latent under the Laplace that the integer entropy model predicts from the
latents decoded before it. Everything the decoder needs is in the stream and counted in the rate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lfcomp.bitstream.container import CodecPayload
from lfcomp.codecs.decoder import DecodeCost, DecodedModel
from lfcomp.codecs.latent.entropy_model import CONTEXT_SIZE, FRAC_BITS, IntegerARM, gather_context, laplace_bits
from lfcomp.codecs.latent.model import LatentCodecModel, LatentGeometry
from lfcomp.errors import LfcompError, key_mismatch

__all__ = ["CODEC", "LIMITS", "check_geometry", "decode_cost", "decoded_model", "encode_model", "model_from_payload"]

log = logging.getLogger("lfcomp")
CODEC = "latent"
FORMAT = 1
LOG2_STEPS = range(4, 14)  # candidate synthesis quantisation steps 2^-k
HEADER_KEYS = {"codec", "format", "geometry", "arm_hidden", "synthesis_log2_step", "latent_bound", "weight_bound"}
GEOMETRY_KEYS = {"grid", "size", "margin", "levels", "disparity_stride", "disparity_step", "hidden", "gain", "warp"}
LIMITS = {"views": 64, "pixels": 8192, "levels": 12, "margin": 512, "stride": 256, "width": 256, "layers": 8,
          "arm_hidden": 64, "bound": 1 << 20,
          "latents": 1 << 22}  # the coding plan holds 88 B per latent: 370 MB at this limit


def _constriction():
    import constriction

    return constriction


@dataclass(frozen=True)
class CodedTensors:
    """Integer tensors with their Laplace scales, coded in order (weights of both networks)."""

    values: list[np.ndarray]
    scales: np.ndarray  # float32, one per tensor


def _weight_bits(values: np.ndarray, scale: float) -> float:
    """Bits of integer weights under the zero-mean Laplace they are coded with (``laplace_bits``)."""
    v = torch.from_numpy(values.astype(np.float64).ravel())
    return float(laplace_bits(v, torch.zeros_like(v), torch.full_like(v, math.log2(scale))).sum())


def _scale_of(values: np.ndarray) -> np.float32:
    return np.float32(max(float(np.abs(values).mean()) if values.size else 0.0, 0.05))


def synthesis_integers(model: LatentCodecModel, log2_step: int) -> list[np.ndarray]:
    scale = float(2 ** log2_step)
    return [np.rint(p.detach().double().cpu().numpy() * scale).astype(np.int64) for p in
            model.field.synthesis.parameters()]


def load_synthesis(model: LatentCodecModel, integers: list[np.ndarray], log2_step: int) -> None:
    with torch.no_grad():
        for p, q in zip(model.field.synthesis.parameters(), integers):
            p.copy_(torch.from_numpy((q.astype(np.float64) / 2 ** log2_step).astype(np.float32)).view_as(p))


def choose_synthesis_step(model: LatentCodecModel, views: np.ndarray, lmbda: float, rays: int = 65536) -> int:
    """The quantisation step 2^-k of the synthesis weights minimising MSE + λ · their bits per pixel."""
    U, V, H, W, _ = views.shape
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(0, U * V * H * W, (rays,), generator=generator)
    view, pixel = index // (H * W), index % (H * W)
    s, t = (view % V).float() - (V - 1) / 2, (view // V).float() - (U - 1) / 2
    x, y = (pixel % W).float(), (pixel // W).float()
    target = torch.from_numpy(views.reshape(-1, 3)[index.numpy()]).float() / 255
    original = [p.detach().clone() for p in model.field.synthesis.parameters()]
    best, best_cost = LOG2_STEPS[-1], math.inf
    with torch.no_grad():
        for k in LOG2_STEPS:
            for p, o in zip(model.field.synthesis.parameters(), original):
                p.copy_(o)
            integers = synthesis_integers(model, k)
            load_synthesis(model, integers, k)
            mse = float(((model.field.render(s, t, x, y, "round").clamp(0, 1) - target) ** 2).mean())
            bits = sum(_weight_bits(q, float(_scale_of(q))) for q in integers)
            cost = mse + lmbda * bits / (U * V * H * W)
            if cost < best_cost:
                best, best_cost = k, cost
        for p, o in zip(model.field.synthesis.parameters(), original):
            p.copy_(o)
    return best


def encode_model(model: LatentCodecModel, views: np.ndarray, lmbda: float) -> tuple[CodecPayload, LatentCodecModel]:
    """The payload of a trained model, and the model exactly as the decoder will rebuild it."""
    model = model.cpu().eval()
    k = choose_synthesis_step(model, views, lmbda)
    synthesis = synthesis_integers(model, k)
    load_synthesis(model, synthesis, k)
    arm = model.arm.integer()
    weights = [*arm.parameters(), *synthesis]
    scales = np.array([_scale_of(w) for w in weights], dtype=np.float32)
    latents = model.flat_latents("round").detach().numpy().astype(np.int64)
    with torch.no_grad():  # the decoder's latents are these integers
        for grid, flat in zip(model.field.all_latents(), _split_grids(latents, model)):
            grid.copy_(torch.from_numpy(flat.astype(np.float32)).view_as(grid))
    latent_bound = int(np.abs(latents).max(initial=0))
    weight_bound = int(max((np.abs(w).max(initial=0) for w in weights), default=0))
    if max(latent_bound, weight_bound) >= LIMITS["bound"]:
        raise LfcompError("latent-encode", f"values beyond the coder's bound {LIMITS['bound']}")
    c = _constriction()
    encoder = c.stream.queue.RangeEncoder()
    weight_family = c.stream.model.QuantizedLaplace(-weight_bound - 1, weight_bound + 1)
    for w, scale in zip(weights, scales):
        flat = w.reshape(-1).astype(np.int32)
        if flat.size:
            encoder.encode(flat, weight_family, np.zeros(flat.size), np.full(flat.size, float(scale)))
    latent_family = c.stream.model.QuantizedLaplace(-latent_bound - 1, latent_bound + 1)
    plan = model.plan
    for rows in plan.passes:
        context = gather_context(torch.from_numpy(latents), plan, rows).numpy()
        mean, scale = arm.predict(context)
        encoder.encode(latents[plan.position[rows]].astype(np.int32), latent_family, mean, scale)
    data = encoder.get_compressed().astype("<u4").tobytes()
    header = {"codec": CODEC, "format": FORMAT, "geometry": model.geometry.to_dict(),
              "arm_hidden": int(model.arm.hidden.out_features), "synthesis_log2_step": int(k),
              "latent_bound": latent_bound, "weight_bound": weight_bound}
    return CodecPayload(header, {"weight_scales": scales}, {}, np.zeros(0, dtype=np.int64), data), model


def _split_grids(flat: np.ndarray, model: LatentCodecModel) -> list[np.ndarray]:
    sizes = [grid.numel() for grid in model.field.all_latents()]
    return np.split(flat, np.cumsum(sizes)[:-1])


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name} = {repr(value)[:40]} outside {low}..{high}")
    return value


def check_geometry(g: Any) -> LatentGeometry:
    """A geometry from untrusted data (a bitstream header, a checkpoint), every field checked against
    ``LIMITS`` before anything is allocated; ValueError names the first problem."""
    problem = key_mismatch(g, GEOMETRY_KEYS, "geometry")
    if problem:
        raise ValueError(problem)
    for key, count in (("grid", 2), ("size", 2), ("hidden", None)):
        if not isinstance(g[key], list) or (count and len(g[key]) != count) or len(g[key]) > LIMITS["layers"]:
            raise ValueError(f"{key} = {repr(g[key])[:40]} is not a list of {count or 'up to 8'} integers")
    grid = [_integer(v, "grid", 1, LIMITS["views"]) for v in g["grid"]]
    size = [_integer(v, "size", 1, LIMITS["pixels"]) for v in g["size"]]
    hidden = [_integer(v, "hidden", 1, LIMITS["width"]) for v in g["hidden"]]
    for key in ("disparity_step", "gain"):
        if type(g[key]) not in (int, float) or not math.isfinite(g[key]) or not 0 < g[key] < 1e3:
            raise ValueError(f"{key} = {repr(g[key])[:40]} is not a number in (0, 1000)")
    if type(g["warp"]) is not bool:
        raise ValueError(f"warp = {repr(g['warp'])[:40]} is not true or false")
    geometry = LatentGeometry(grid=(grid[0], grid[1]), size=(size[0], size[1]),
                              margin=_integer(g["margin"], "margin", 0, LIMITS["margin"]),
                              levels=_integer(g["levels"], "levels", 1, LIMITS["levels"]),
                              disparity_stride=_integer(g["disparity_stride"], "disparity_stride", 1, LIMITS["stride"]),
                              disparity_step=float(g["disparity_step"]), hidden=tuple(hidden), gain=float(g["gain"]),
                              warp=g["warp"])
    if geometry.latent_count() > LIMITS["latents"]:
        raise ValueError(f"{geometry.latent_count()} latents, limit {LIMITS['latents']}")
    return geometry


def _geometry_from(header: dict[str, Any], source: str) -> tuple[LatentGeometry, int, int, int, int]:
    """Validate every header field against the documented limits before anything is allocated."""
    if header.get("format") != FORMAT or type(header.get("format")) is not int:
        raise LfcompError(source, f"unsupported latent-codec format {str(header.get('format'))[:40]!r}")
    try:
        problem = key_mismatch(header, HEADER_KEYS, "header")
        if problem:
            raise ValueError(problem)
        geometry = check_geometry(header["geometry"])
        arm_hidden = _integer(header["arm_hidden"], "arm_hidden", 1, LIMITS["arm_hidden"])
        k = _integer(header["synthesis_log2_step"], "synthesis_log2_step", 0, 30)
        latent_bound = _integer(header["latent_bound"], "latent_bound", 0, LIMITS["bound"])
        weight_bound = _integer(header["weight_bound"], "weight_bound", 0, LIMITS["bound"])
    except ValueError as exc:
        raise LfcompError(source, f"corrupted header ({exc})") from None
    return geometry, arm_hidden, k, latent_bound, weight_bound


def decode_cost(payload: CodecPayload, source: str) -> DecodeCost:
    """What decoding ``payload`` costs, stated from the validated header before anything is built:
    the coding plan (88 B per latent), the latents and the weights; per pixel, every level's and the
    disparity's bilinear taps and the synthesis MLP. A view is rendered at once."""
    geometry, arm_hidden, _, _, _ = _geometry_from(payload.header, source)
    widths = [geometry.levels + 2, *geometry.hidden, 3]
    synthesis_macs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    model_bytes = 128 * geometry.latent_count() + 64 * (arm_hidden * (CONTEXT_SIZE + 3) + synthesis_macs) + (1 << 20)
    return DecodeCost(model_bytes=model_bytes, bytes_per_ray=4 * 4 * (8 * (geometry.levels + 2) + 2 * sum(widths)),
                      macs_per_ray=4 * (geometry.levels + 2) + synthesis_macs, whole_views=True)


def model_from_payload(payload: CodecPayload, source: str) -> LatentCodecModel:
    """Range-decode the payload into the model the encoder verified (any problem: one-line error)."""
    geometry, arm_hidden, k, latent_bound, weight_bound = _geometry_from(payload.header, source)
    model = LatentCodecModel(geometry, arm_hidden).eval()
    shapes = [(arm_hidden, CONTEXT_SIZE), (arm_hidden,), (2, arm_hidden), (2,)]
    shapes += [tuple(p.shape) for p in model.field.synthesis.parameters()]
    scales = payload.float32.get("weight_scales")
    if (scales is None or scales.shape != (len(shapes),) or not np.all(np.isfinite(scales)) or np.any(scales <= 0)
            or payload.data is None or len(payload.data) % 4):
        raise LfcompError(source, "inconsistent bitstream: weight scales or coded data do not match the header")
    c = _constriction()
    try:
        decoder = c.stream.queue.RangeDecoder(np.frombuffer(payload.data, dtype="<u4").astype(np.uint32))
        weight_family = c.stream.model.QuantizedLaplace(-weight_bound - 1, weight_bound + 1)
        weights = []
        for shape, scale in zip(shapes, scales):
            n = math.prod(shape)
            values = decoder.decode(weight_family, np.zeros(n), np.full(n, float(scale))) if n else np.zeros(0)
            weights.append(np.asarray(values, dtype=np.int64).reshape(shape))
        arm = IntegerARM(*weights[:4])
        plan = model.plan
        latents = np.zeros(plan.total, dtype=np.int64)
        latent_family = c.stream.model.QuantizedLaplace(-latent_bound - 1, latent_bound + 1)
        for rows in plan.passes:
            context = gather_context(torch.from_numpy(latents), plan, rows).numpy()
            mean, scale = arm.predict(context)
            latents[plan.position[rows]] = decoder.decode(latent_family, mean, scale)
    except LfcompError:
        raise
    except Exception as exc:  # constriction reports exhausted or invalid data with several types
        raise LfcompError(source, f"corrupted range-coded data ({type(exc).__name__})") from None
    load_synthesis(model, weights[4:], k)
    with torch.no_grad():  # the float entropy model whose fixed-point weights these are (exact)
        for p, q in zip((model.arm.hidden.weight, model.arm.hidden.bias, model.arm.out.weight, model.arm.out.bias),
                        weights[:4]):
            p.copy_(torch.from_numpy(q.astype(np.float64) / (1 << FRAC_BITS)).float().view_as(p))
        for grid, flat in zip(model.field.all_latents(), _split_grids(latents, model)):
            grid.copy_(torch.from_numpy(flat.astype(np.float32)).view_as(grid))
    return model


def decoded_model(payload: CodecPayload, source: str, device: torch.device) -> DecodedModel:
    """The decoder's view of a latent-codec bitstream: a renderer of any (fractional) viewpoint."""
    cost = decode_cost(payload, source)
    model = model_from_payload(payload, source).to(device)

    def render(positions: list[tuple[float, float]], chunk_rays: int, progress: bool) -> np.ndarray:
        from lfcomp.codecs.latent.fit import render_views

        return render_views(model, positions, progress)

    spec = {"codec": CODEC, **payload.header}
    return DecodedModel(grid=model.geometry.grid, size=model.geometry.size, spec=spec, render=render, cost=cost)

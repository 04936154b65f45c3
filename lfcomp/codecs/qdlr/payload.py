"""Stage 7 and the decoder's half of stage 8: the QDLR bitstream's contents, written and read back.

The bitstream carries (paper §2.5): the architecture (the scene spec, as deflated JSON), the
camera parameters as float32 (log f, Δ and the focus-plane term κ), the shared codebook (float32),
each weight tensor's outlier range (float32 pairs), the biases as 16-bit codes with their ranges,
and the Huffman-coded union of codebook labels and 16-bit outlier codes of every weight. Tensor
names and shapes are not sent: the decoder derives them from the architecture, and checks every
count and value range against it before building the network (``check_payload``).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfcomp.bitstream.container import (
    CodecPayload,
    bitstream_breakdown,
    decode_payload,
    encode_payload,
    write_bitstream,
)
from lfcomp.codecs.decoder import DecodeCost, DecodedModel
from lfcomp.codecs.qdlr.quantize import QuantizedModel, bias_params, dequantize_model, weight_params
from lfcomp.errors import LfcompError, key_mismatch
from lfcomp.models.scene import SceneModel, render_views
from lfcomp.models.spec import SpecShape, check_spec

__all__ = ["CAMERA_KEYS", "build_model", "check_payload", "decode_cost", "decoded_model", "encode", "from_payload",
           "to_payload"]

log = logging.getLogger("lfcomp")
CAMERA_KEYS = ("log_focal", "baseline", "kappa")
HEADER_KEYS = {"spec", "centroids"}
FLOAT32_SIZES = ("camera", "codebook", "weight_ranges", "bias_ranges")
MAX_CENTROIDS = 65536


def build_model(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel) -> SceneModel:
    """The QDLR network exactly as the decoder sees it: architecture + camera + dequantized tensors."""
    model = SceneModel(spec, {"focal": 1.0, "baseline": 0.0, "kappa": 0.0}, camera_trainable=False)
    model.camera.load_state_dict({k: torch.tensor(camera_state[k], dtype=torch.float32) for k in CAMERA_KEYS})
    return dequantize_model(model, quantized)


def to_payload(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel) -> CodecPayload:
    header = {"spec": spec, "centroids": quantized.centroids}
    float32 = {
        "camera": np.array([camera_state[k] for k in CAMERA_KEYS], dtype=np.float32),
        "codebook": quantized.codebook.numpy().astype(np.float32),
        "weight_ranges": quantized.weight_ranges.numpy().astype(np.float32),
        "bias_ranges": quantized.bias_ranges.numpy().astype(np.float32),
    }
    bias_codes = torch.cat(quantized.bias_codes).numpy() if quantized.bias_codes else np.zeros(0)
    return CodecPayload(header=header, float32=float32, uint16={"biases": bias_codes.astype(np.uint16)},
                        symbols=quantized.all_symbols())


def check_payload(payload: CodecPayload, source: str) -> tuple[SpecShape, int]:
    """Validate the whole QDLR payload against the architecture it states, by arithmetic (nothing is
    built): header keys, the spec's limits, N, every array's name, size and finiteness, the camera's
    range and the weight and bias counts. Returns the architecture's shape and N."""
    def corrupted(problem: str) -> LfcompError:
        return LfcompError(source, f"corrupted QDLR bitstream ({problem})")

    header = payload.header
    problem = key_mismatch({k: v for k, v in header.items() if k != "codec"}, HEADER_KEYS, "header")
    if problem:
        raise corrupted(problem)
    try:
        shape = check_spec(header["spec"])
    except ValueError as exc:
        raise corrupted(str(exc)) from None
    centroids = header["centroids"]
    if type(centroids) is not int or not 2 <= centroids <= MAX_CENTROIDS:
        raise corrupted(f"N = {str(centroids)[:40]} is not an integer in 2..{MAX_CENTROIDS}")
    if set(payload.float32) != set(FLOAT32_SIZES) or set(payload.uint16) != {"biases"}:
        raise corrupted("unexpected arrays")
    expected = {"camera": 3, "codebook": centroids, "weight_ranges": 2 * len(shape.weight_shapes),
                "bias_ranges": 2 * len(shape.bias_shapes)}
    for name, size in expected.items():
        array = payload.float32[name]
        if array.size != size:
            raise corrupted(f"{name} holds {array.size} values, the architecture needs {size}")
        if not np.all(np.isfinite(array)):
            raise corrupted(f"non-finite values in {name}")
    if payload.uint16["biases"].size != shape.biases:
        raise corrupted(f"{payload.uint16['biases'].size} bias codes for {shape.biases} biases")
    symbols = np.asarray(payload.symbols)
    if symbols.size != shape.weights:
        raise corrupted(f"{symbols.size} weight symbols for {shape.weights} weights")
    if symbols.size and int(symbols.max()) > centroids + 65535:
        raise corrupted("weight symbol outside the alphabet")
    log_focal, baseline, kappa = map(float, payload.float32["camera"].ravel())
    if abs(log_focal) > 30 or abs(baseline) > 1e6 or abs(kappa) > 1e6:
        raise corrupted("camera values out of range (|log f| ≤ 30, |Δ|, |κ| ≤ 10^6)")
    if np.abs(payload.float32["weight_ranges"]).max(initial=0) > 1e30 or \
            np.abs(payload.float32["bias_ranges"]).max(initial=0) > 1e30:
        raise corrupted("quantizer ranges out of range (|value| ≤ 10^30)")
    return shape, centroids


def decode_cost(payload: CodecPayload, source: str) -> DecodeCost:
    """What decoding ``payload`` costs, stated from the validated header before anything is built."""
    shape, _ = check_payload(payload, source)
    # symbols (int64), their tensor copy, the dequantized tensors and the model's own (float32)
    model_bytes = 32 * (shape.weights + shape.biases) + (1 << 20)
    return DecodeCost(model_bytes=model_bytes, bytes_per_ray=8 * shape.floats_per_ray, macs_per_ray=shape.macs_per_ray)


def from_payload(payload: CodecPayload, source: str) -> tuple[dict[str, Any], dict[str, float], QuantizedModel]:
    """Rebuild (spec, camera state, quantized model) from a payload that ``check_payload`` accepts."""
    shape, centroids = check_payload(payload, source)
    spec = copy.deepcopy(payload.header["spec"])
    skeleton = SceneModel(spec, {"focal": 1.0, "baseline": 0.0, "kappa": 0.0}, camera_trainable=False)
    weights, biases = weight_params(skeleton), bias_params(skeleton)
    if [tuple(p.shape) for _, p in weights] != shape.weight_shapes:  # the arithmetic and the network agree
        raise RuntimeError("internal error: the spec's arithmetic does not match the built network")
    camera = payload.float32["camera"].ravel()
    codebook = torch.from_numpy(payload.float32["codebook"].ravel().copy())
    weight_ranges = torch.from_numpy(payload.float32["weight_ranges"].copy()).reshape(-1, 2)
    bias_ranges = torch.from_numpy(payload.float32["bias_ranges"].copy()).reshape(-1, 2)
    bias_codes = torch.from_numpy(payload.uint16["biases"].ravel().astype(np.int64))
    symbols = torch.from_numpy(np.asarray(payload.symbols, dtype=np.int64))
    sizes = [p.numel() for _, p in weights]
    bias_sizes = [p.numel() for _, p in biases]
    quantized = QuantizedModel(
        centroids=centroids, codebook=codebook, weight_names=[n for n, _ in weights],
        weight_shapes=[list(p.shape) for _, p in weights], weight_symbols=list(torch.split(symbols, sizes)),
        weight_ranges=weight_ranges, bias_names=[n for n, _ in biases],
        bias_codes=list(torch.split(bias_codes, bias_sizes)), bias_ranges=bias_ranges)
    return spec, dict(zip(CAMERA_KEYS, map(float, camera))), quantized


def encode(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel,
           path: str | Path) -> dict[str, Any]:
    """Write the bitstream and check that it decodes to exactly the same tensors."""
    data = encode_payload(to_payload(spec, camera_state, quantized))
    _, camera_back, back = from_payload(decode_payload(data, str(path)), str(path))
    same = (camera_back == camera_state and torch.equal(back.codebook, quantized.codebook)
            and all(torch.equal(a, b) for a, b in zip(back.weight_symbols, quantized.weight_symbols))
            and all(torch.equal(a, b) for a, b in zip(back.bias_codes, quantized.bias_codes))
            and torch.equal(back.weight_ranges, quantized.weight_ranges)
            and torch.equal(back.bias_ranges, quantized.bias_ranges))
    if not same:
        raise RuntimeError("internal error: the bitstream does not round-trip the quantized model")
    write_bitstream(data, path)
    return {"bytes": len(data), "sections": bitstream_breakdown(data), "symbols": int(quantized.all_symbols().size)}


def decoded_model(payload: CodecPayload, source: str, device: torch.device) -> DecodedModel:
    """The decoder's view of a QDLR bitstream: a renderer of any (fractional) viewpoint."""
    cost = decode_cost(payload, source)
    spec, camera_state, quantized = from_payload(payload, source)
    model = build_model(spec, camera_state, quantized).to(device)

    def render(positions: list[tuple[float, float]], chunk_rays: int, progress: bool) -> np.ndarray:
        return render_views(model, positions, chunk_rays, progress=progress)

    return DecodedModel(grid=(spec["grid"][0], spec["grid"][1]), size=(spec["size"][0], spec["size"][1]), spec=spec,
                        render=render, cost=cost)

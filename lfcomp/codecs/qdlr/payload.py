"""Stage 7 and the decoder's half of stage 8: the QDLR bitstream's contents, written and read back.

The bitstream carries (paper §2.5): the architecture (the scene spec, as deflated JSON), the
camera parameters as float32 (log f, Δ and the focus-plane term κ), the shared codebook (float32),
each weight tensor's outlier range (float32 pairs), the biases as 16-bit codes with their ranges,
and the Huffman-coded union of codebook labels and 16-bit outlier codes of every weight. Tensor
names and shapes are not sent: the decoder derives them from the architecture.
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
from lfcomp.codecs.decoder import DecodedModel
from lfcomp.codecs.qdlr.quantize import QuantizedModel, bias_params, dequantize_model, weight_params
from lfcomp.errors import LfcompError
from lfcomp.models.scene import SceneModel, render_views

__all__ = ["CAMERA_KEYS", "build_model", "decoded_model", "encode", "from_payload", "to_payload"]

log = logging.getLogger("lfcomp")
CAMERA_KEYS = ("log_focal", "baseline", "kappa")


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


def from_payload(payload: CodecPayload, source: str) -> tuple[dict[str, Any], dict[str, float], QuantizedModel]:
    """Rebuild (spec, camera state, quantized model); inconsistent contents are clean errors."""
    try:
        spec = copy.deepcopy(payload.header["spec"])
        centroids = int(payload.header["centroids"])
        skeleton = SceneModel(spec, {"focal": 1.0, "baseline": 0.0, "kappa": 0.0}, camera_trainable=False)
        weights, biases = weight_params(skeleton), bias_params(skeleton)
        camera = payload.float32["camera"]
        codebook = torch.from_numpy(payload.float32["codebook"].copy())
        weight_ranges = torch.from_numpy(payload.float32["weight_ranges"].copy()).reshape(-1, 2)
        bias_ranges = torch.from_numpy(payload.float32["bias_ranges"].copy()).reshape(-1, 2)
        bias_codes = torch.from_numpy(payload.uint16["biases"].astype(np.int64))
        symbols = torch.from_numpy(np.asarray(payload.symbols, dtype=np.int64))
    except Exception as exc:
        raise LfcompError(source, f"bitstream does not describe an lfcomp model ({type(exc).__name__}: {exc})") from None
    sizes = [p.numel() for _, p in weights]
    bias_sizes = [p.numel() for _, p in biases]
    problems = []
    if camera.shape != (3,):
        problems.append("camera block must hold 3 values")
    if codebook.numel() != centroids or not 2 <= centroids <= 65536:
        problems.append(f"codebook has {codebook.numel()} values for N={centroids}")
    if weight_ranges.shape[0] != len(sizes) or bias_ranges.shape[0] != len(bias_sizes):
        problems.append("quantizer ranges do not match the architecture")
    if symbols.numel() != sum(sizes):
        problems.append(f"{symbols.numel()} weight symbols for {sum(sizes)} weights")
    if bias_codes.numel() != sum(bias_sizes):
        problems.append(f"{bias_codes.numel()} bias codes for {sum(bias_sizes)} biases")
    if symbols.numel() and int(symbols.max()) > centroids + 65535:
        problems.append("weight symbol outside the alphabet")
    if problems:
        raise LfcompError(source, "inconsistent bitstream: " + "; ".join(problems))
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
    spec, camera_state, quantized = from_payload(payload, source)
    model = build_model(spec, camera_state, quantized).to(device)

    def render(positions: list[tuple[float, float]], chunk_rays: int, progress: bool) -> np.ndarray:
        return render_views(model, positions, chunk_rays, progress=progress)

    return DecodedModel(grid=(int(spec["grid"][0]), int(spec["grid"][1])), size=tuple(spec["size"]), spec=spec,
                        render=render)

"""Stage 6, QDLR-NeRF (paper §2.5): one shared k-means codebook and quantization-aware training.

* Weight values inside [−1, 1] are replaced by the nearest of N centroids of ONE codebook shared
  by all layers (scikit-learn k-means, ``kmeans_iters`` iterations).
* Values outside [−1, 1] (rare, but they matter) get a uniform 16-bit quantizer over their
  tensor's own outlier range.
* Progressive, layer by layer: after the weights of layer n are quantized (and frozen), the
  later layers' weights and all biases train on (``steps_per_layer``).
* Once all layers are quantized, the codebook itself is updated: centroids train (labels fixed)
  together with the biases (``codebook_steps``). Then biases get a 16-bit uniform quantizer.

Each weight element becomes one *symbol* of the union alphabet the bitstream Huffman-codes:
``label`` (0..N−1) inside [−1, 1], or ``N + q`` (q a 16-bit code) outside. ``dequantize_model``
turns symbols, codebook and ranges back into weights; the encoder and the decoder both build
their network through it, so they render bit for bit the same views.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch.func import functional_call

from lfcomp.config import QuantizeConfig, TrainConfig
from lfcomp.engine.device import seed_everything
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.trainer import Optimisation, Trainer
from lfcomp.engine.validation import evaluate
from lfcomp.errors import LfcompError
from lfcomp.models.mlp import slot_bias, slot_weight_params
from lfcomp.models.scene import SceneModel, count_field_params

log = logging.getLogger("lfcomp")
LEVELS = 65535  # 16-bit uniform quantizer: codes 0..65535


@dataclass
class QuantizedModel:
    """The quantized parameters of a field, exactly what the bitstream carries."""

    centroids: int
    codebook: torch.Tensor  # (N,) float32
    weight_names: list[str]  # state_dict names, forward order
    weight_shapes: list[list[int]]
    weight_symbols: list[torch.Tensor]  # int64, flattened, union alphabet
    weight_ranges: torch.Tensor  # (T, 2) float32: outlier range [lo, hi] per weight tensor
    bias_names: list[str]
    bias_codes: list[torch.Tensor]  # int64 16-bit codes
    bias_ranges: torch.Tensor  # (B, 2) float32

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizedModel:
        return cls(**data)

    def all_symbols(self) -> np.ndarray:
        return torch.cat(self.weight_symbols).numpy() if self.weight_symbols else np.zeros(0, np.int64)


def check_centroids(n: int) -> None:
    if not 2 <= n <= 65536:
        raise LfcompError("--centroids", f"N must be in 2..65536, got {n}")


def uniform16_codes(values: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """16-bit codes of values on the uniform grid over [lo, hi]."""
    step = (hi - lo) / LEVELS
    if float(step) == 0.0:
        return torch.zeros_like(values, dtype=torch.int64)
    return torch.round((values - lo) / step).clamp(0, LEVELS).to(torch.int64)


def uniform16_values(codes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Dequantize 16-bit codes (float32 arithmetic, identical in encoder and decoder)."""
    step = (hi - lo) / LEVELS
    return lo + codes.to(torch.float32) * step


def nearest_centroid(values: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid of a sorted 1-D codebook."""
    midpoints = (codebook[1:] + codebook[:-1]) / 2
    return torch.bucketize(values, midpoints)


def quantize_weight(weight: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Union-alphabet symbols of one weight tensor (flattened) and its outlier range (2,)."""
    flat = weight.detach().reshape(-1).float().cpu()
    n = codebook.numel()
    outside = flat.abs() > 1.0
    if outside.any():
        lo, hi = flat[outside].min(), flat[outside].max()
    else:
        lo = hi = torch.tensor(0.0)
    symbols = nearest_centroid(flat, codebook)
    symbols = torch.where(outside, n + uniform16_codes(flat, lo, hi), symbols)
    return symbols, torch.stack([lo, hi]).float()


def dequantize_weight(symbols: torch.Tensor, codebook: torch.Tensor, value_range: torch.Tensor,
                      shape: list[int]) -> torch.Tensor:
    n = codebook.numel()
    inside = symbols < n
    inner = codebook[symbols.clamp(max=n - 1)]
    outer = uniform16_values((symbols - n).clamp(min=0), value_range[0], value_range[1])
    return torch.where(inside, inner, outer).reshape(shape)


def fit_codebook(values: np.ndarray, centroids: int, iterations: int, seed: int) -> torch.Tensor:
    """Shared k-means codebook (sorted float32) of the weight values inside [−1, 1]."""
    inside = values[np.abs(values) <= 1.0].astype(np.float64).reshape(-1, 1)
    distinct = np.unique(inside).size
    if distinct < centroids:
        raise LfcompError("--centroids", f"N={centroids} exceeds the {distinct} distinct weight values in [-1, 1]")
    kmeans = KMeans(n_clusters=centroids, n_init=1, max_iter=iterations, random_state=seed).fit(inside)
    return torch.from_numpy(np.sort(kmeans.cluster_centers_.ravel()).astype(np.float32))


def weight_params(model: SceneModel) -> list[tuple[str, torch.nn.Parameter]]:
    """(state_dict name, parameter) of every weight matrix, forward order."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [(names[id(p)], p) for _, slot in model.field.named_slots() for p in slot_weight_params(slot)]


def bias_params(model: SceneModel) -> list[tuple[str, torch.nn.Parameter]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [(names[id(slot_bias(slot))], slot_bias(slot)) for _, slot in model.field.named_slots()]


def dequantize_model(model: SceneModel, quantized: QuantizedModel) -> SceneModel:
    """Load the dequantized weights and biases into ``model`` (the one path to a QDLR network)."""
    state = {}
    for name, shape, symbols, value_range in zip(quantized.weight_names, quantized.weight_shapes,
                                                 quantized.weight_symbols, quantized.weight_ranges):
        state[name] = dequantize_weight(symbols, quantized.codebook, value_range, shape)
    for name, codes, value_range in zip(quantized.bias_names, quantized.bias_codes, quantized.bias_ranges):
        state[name] = uniform16_values(codes, value_range[0], value_range[1])
    device = model.camera.log_focal.device
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in state.items():
            params[name].copy_(value.to(device))
    return model


def quantize_model(model: SceneModel, views: np.ndarray, centroids: int, cfg: QuantizeConfig,
                   train_cfg: TrainConfig) -> tuple[QuantizedModel, dict[str, Any]]:
    """Codebook quantization with progressive QAT; returns the quantized model and stage extras."""
    check_centroids(centroids)
    seed_everything(train_cfg.seed)
    device = model.camera.log_focal.device
    rays = RayBatches.from_views(views, device, train_cfg.seed + 3, train_cfg.holdout_views)
    weights = weight_params(model)
    biases = [p for _, p in bias_params(model)]
    all_values = torch.cat([p.detach().reshape(-1).cpu() for _, p in weights]).numpy()
    outside = int((np.abs(all_values) > 1.0).sum())
    codebook = fit_codebook(all_values, centroids, cfg.kmeans_iters, train_cfg.seed)
    log.info("codebook: N=%d from %d weights (%d = %.2f%% outside [-1, 1], 16-bit)",
             centroids, all_values.size, outside, 100.0 * outside / all_values.size)

    symbols: list[torch.Tensor] = []
    ranges: list[torch.Tensor] = []
    history: list[dict[str, float]] = []
    for index, (name, param) in enumerate(weights):
        layer_symbols, value_range = quantize_weight(param, codebook)
        with torch.no_grad():
            param.copy_(dequantize_weight(layer_symbols, codebook, value_range, list(param.shape)).to(device))
        param.requires_grad_(False)
        symbols.append(layer_symbols)
        ranges.append(value_range)
        trainable = [p for _, p in weights[index + 1:]] + biases
        optimisation = Optimisation(cfg.steps_per_layer, cfg.lr, cfg.lr_final_ratio, train_cfg.batch_rays,
                                    train_cfg.log_every, cfg.precision)
        desc = f"QAT {index + 1}/{len(weights)} {'.'.join(name.split('.')[2:-1])}"
        history += Trainer(model, rays, trainable, optimisation, desc).run()

    codebook, symbols = update_codebook(model, rays, weights, symbols, ranges, codebook, biases, cfg, train_cfg)
    bias_names = [name for name, _ in bias_params(model)]
    bias_ranges = torch.stack([torch.stack([p.detach().min(), p.detach().max()]).float().cpu() for p in biases])
    bias_codes = [uniform16_codes(p.detach().float().cpu(), r[0], r[1]) for p, r in zip(biases, bias_ranges)]
    quantized = QuantizedModel(
        centroids=centroids, codebook=codebook, weight_names=[n for n, _ in weights],
        weight_shapes=[list(p.shape) for _, p in weights], weight_symbols=symbols,
        weight_ranges=torch.stack(ranges), bias_names=bias_names, bias_codes=bias_codes, bias_ranges=bias_ranges)
    dequantize_model(model, quantized)
    report = evaluate(model, views, train_cfg)
    report["params"] = count_field_params(model)
    report["centroids"] = centroids
    report["outside_fraction"] = outside / all_values.size
    log.info("QDLR-NeRF N=%d: PSNR %.2f dB (RGB)", centroids, report["psnr_rgb"])
    return quantized, {"history": history, "report": report}


def update_codebook(model: SceneModel, rays: RayBatches, weights: list[tuple[str, torch.nn.Parameter]],
                    symbols: list[torch.Tensor], ranges: list[torch.Tensor], codebook: torch.Tensor,
                    biases: list[torch.nn.Parameter], cfg: QuantizeConfig, train_cfg: TrainConfig
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Train the shared centroids (labels fixed) and the biases.

    Returns the new codebook, sorted again, and the symbols relabelled so that every weight still
    points at the same (moved) centroid.
    """
    device = model.camera.log_focal.device
    centres = torch.nn.Parameter(codebook.clone().to(device))
    device_symbols = [s.to(device) for s in symbols]
    device_ranges = [r.to(device) for r in ranges]

    def render(s, t, x, y, perturb=False, generator=None):
        overrides = {name: dequantize_weight(sym, centres, rng, list(p.shape))
                     for (name, p), sym, rng in zip(weights, device_symbols, device_ranges)}
        return functional_call(model, overrides, (s, t, x, y), {"perturb": perturb, "generator": generator})

    if cfg.codebook_steps > 0:
        optimisation = Optimisation(cfg.codebook_steps, cfg.lr, cfg.lr_final_ratio, train_cfg.batch_rays,
                                    train_cfg.log_every, cfg.precision)
        Trainer(model, rays, [centres] + biases, optimisation, "codebook update").run(render=render)
    new = centres.detach().cpu().float()
    order = torch.argsort(new)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    n = new.numel()
    relabelled = [torch.where(sym < n, inverse[sym.clamp(max=n - 1)], sym) for sym in symbols]
    return new[order].contiguous(), relabelled

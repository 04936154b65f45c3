"""The scene model: a light-field camera and a field of a registered model kind (nerfstudio's split).

``SceneModel`` is what every QDLR stage trains and what the decoder rebuilds from a bitstream. Its
full description is a JSON-able ``spec`` (model kind, field architecture, image geometry, depth
range, factorized slots), so checkpoints and bitstreams carry the spec plus the tensors, never
pickled code. The kind (``lfcomp.models.registry``) supplies the field and how a ray batch is
rendered through it: ``nerf`` samples and volume-renders, ``nelf`` evaluates once per ray.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from lfcomp.models.camera import LightFieldCamera
from lfcomp.models.registry import MODEL_KINDS, ModelKind
from lfcomp.models.spec import Spec, make_spec, render_precision, vertical_step

__all__ = ["CPU_ACTIVATION_BYTES", "SceneModel", "Spec", "count_field_params", "grid_offset", "make_spec",
           "render_views", "to_uint8"]

# Rendering on a CPU keeps one activation of a chunk (points × width floats) under this size. With
# glibc keeping freed buffers (``lfcomp.engine.memory``), 81 quick NeRF views of 128² (rank 24,
# 1 thread) took 25.9 s in bf16 and 51.4 s in fp32 with 8 MiB (1024 rays), against 29.0 and 52.3 s
# with 4 MiB and 29.1 and 52.0 s with 16 MiB (without it, 4 MiB had been the best, 39-50 s in fp32).
# The views do not depend on the chunk size (tested), so this is a speed setting, not part of any format.
CPU_ACTIVATION_BYTES = 8 << 20


def _kind(name: str) -> ModelKind:
    if name not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {name!r} (choose from {', '.join(MODEL_KINDS)})")
    return MODEL_KINDS[name]


class SceneModel(nn.Module):
    """A light field as a neural scene: renders the colour of any ray of the camera grid."""

    def __init__(self, spec: Spec, camera_values: dict[str, float], camera_trainable: bool = True) -> None:
        super().__init__()
        kind = _kind(spec["kind"])
        self.spec = copy.deepcopy(spec)
        self.kind = kind.name
        self.learns_camera = kind.learns_camera
        height, width = spec["size"]
        self.camera = LightFieldCamera(height, width, camera_values["focal"], camera_values["baseline"],
                                       camera_values["kappa"], trainable=camera_trainable and kind.learns_camera,
                                       vertical_step=vertical_step(spec))
        module = kind.load()
        self.field = module.Field(**spec["field"], factor_ranks=spec["factor_ranks"])
        self._render_rays = module.render_rays
        self._points_per_ray = module.evaluations_per_ray(spec["samples"])

    def rays_per_chunk(self, chunk_rays: int) -> int:
        """Rays rendered at once: ``chunk_rays``, on a CPU at most what keeps an activation within
        ``CPU_ACTIVATION_BYTES`` (a GPU takes the chunk as given)."""
        if self.camera.log_focal.device.type != "cpu":
            return chunk_rays
        widest = max(slot.out_features for _, slot in self.field.named_slots())
        return max(1, min(chunk_rays, CPU_ACTIVATION_BYTES // (4 * widest * self._points_per_ray)))

    def normalise_points(self, points: torch.Tensor) -> torch.Tensor:
        """World points → about [−1, 1]³: image-plane position (fixed focal) and inverse depth."""
        height, width = self.spec["size"]
        near, far = self.spec["near"], self.spec["far"]
        depth = -points[..., 2]
        scale = self.spec["norm_focal"]
        x = points[..., 0] / depth * scale / (width / 2)
        y = points[..., 1] / depth * scale / (height / 2)
        w = 2.0 * (1.0 / depth - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0
        return torch.stack([x, y, w], dim=-1)

    def normalise_rays(self, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Ray coordinates → [−1, 1]⁴: view position over the grid, pixel centre over the image."""
        (U, V), (height, width) = self.spec["grid"], self.spec["size"]
        return torch.stack([s / max((V - 1) / 2, 0.5), t / max((U - 1) / 2, 0.5),
                            (x + 0.5) / (width / 2) - 1.0, (y + 0.5) / (height / 2) - 1.0], dim=-1)

    def forward(self, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor, perturb: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Colour (R, 3) and depth (R,; zeros for nelf) of the rays through pixels (x, y) of views (s, t).

        ``s``/``t``: horizontal/vertical view offsets from the centre view (fractional allowed);
        ``perturb`` jitters the NeRF samples (training only).
        """
        return self._render_rays(self, s, t, x, y, perturb, generator)

    @torch.no_grad()
    def render_view(self, s: float, t: float, chunk_rays: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Render the view at (fractional) grid offset (s, t): float RGB (H, W, 3) and depth (H, W), in
        the spec's ``render_precision`` (bf16: under autocast)."""
        height, width = self.spec["size"]
        device = self.camera.log_focal.device
        ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                                torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        colours, depths = [], []
        chunk_rays = self.rays_per_chunk(chunk_rays)
        # the spec's arithmetic, whatever autocast a caller (a bf16 training stage) has on
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=render_precision(self.spec) == "bf16"):
            for start in range(0, xs.numel(), chunk_rays):
                x, y = xs[start:start + chunk_rays], ys[start:start + chunk_rays]
                colour, depth = self(torch.full_like(x, s), torch.full_like(x, t), x, y)
                colours.append(colour)
                depths.append(depth)
        colour = torch.cat(colours).float().reshape(height, width, 3).cpu().numpy()
        depth = torch.cat(depths).float().reshape(height, width).cpu().numpy()
        return colour, depth


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] → 8-bit, rounding to nearest (NaN → 0, on every machine)."""
    return np.clip(np.rint(np.nan_to_num(image * 255.0, nan=0.0)), 0, 255).astype(np.uint8)


def grid_offset(u: float, v: float, grid: tuple[int, int] | list[int]) -> tuple[float, float]:
    """(row u, column v) grid position → (s, t) offsets from the centre view."""
    return v - (grid[1] - 1) / 2.0, u - (grid[0] - 1) / 2.0


def render_views(model: SceneModel, positions: list[tuple[float, float]], chunk_rays: int = 4096,
                 progress: bool = False) -> np.ndarray:
    """Render 8-bit views at (u, v) grid positions (fractional allowed): (K, H, W, 3)."""
    from tqdm import tqdm

    model.eval()
    out = []
    for u, v in tqdm(positions, desc="render", unit="view", disable=not progress, leave=False):
        s, t = grid_offset(u, v, model.spec["grid"])
        colour, _ = model.render_view(s, t, chunk_rays)
        out.append(to_uint8(colour))
    return np.stack(out)


def count_field_params(model: SceneModel) -> int:
    """Parameters of the field (the network that is transmitted), camera excluded."""
    return sum(p.numel() for p in model.field.parameters())

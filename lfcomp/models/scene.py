"""The scene model: camera → rays → sampler → field → volume renderer (nerfstudio's split).

``SceneModel`` is what every stage trains and what the decoder rebuilds from a bitstream. Its full
description is a JSON-able ``spec`` (model kind, field architecture, image geometry, depth range,
factorized slots), so checkpoints and bitstreams carry the spec plus the tensors, never pickled
code. Two kinds share everything but ``forward``:

* ``nerf`` (the paper): the camera casts a ray, the sampler picks depths, the field gives density
  and colour per sample, the volume renderer composites them;
* ``nelf``: the field maps the normalised ray coordinate (s, t, x, y) straight to colour, once
  per ray. The camera is kept (and transmitted) but does not enter the colour.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from lfcomp.models.camera import LightFieldCamera
from lfcomp.models.fields import NelfField, NerfField
from lfcomp.models.renderer import volume_render
from lfcomp.models.sampler import stratified_inverse_depth

Spec = dict[str, Any]
FIELD_KEYS = {"nerf": ("depth", "width", "skips", "pos_freqs", "dir_freqs"),
              "nelf": ("depth", "width", "skips", "pos_freqs")}


def make_spec(model_cfg: dict[str, Any], grid: tuple[int, int], size: tuple[int, int],
              near: float, far: float, norm_focal: float) -> Spec:
    """Everything needed to rebuild a SceneModel's architecture (no weights)."""
    kind = model_cfg["kind"]
    if kind not in FIELD_KEYS:
        raise ValueError(f"unknown model kind {kind!r} (nerf or nelf)")
    return {
        "kind": kind,
        "field": {k: model_cfg[k] for k in FIELD_KEYS[kind]},
        "samples": int(model_cfg["samples"]),
        "grid": [int(grid[0]), int(grid[1])],
        "size": [int(size[0]), int(size[1])],
        "near": float(near),
        "far": float(far),
        "norm_focal": float(norm_focal),
        "factor_ranks": {},
    }


class SceneModel(nn.Module):
    """A light field as a neural scene: renders the colour of any ray of the camera grid."""

    def __init__(self, spec: Spec, camera_values: dict[str, float], camera_trainable: bool = True) -> None:
        super().__init__()
        if spec["kind"] not in FIELD_KEYS:
            raise ValueError(f"unknown model kind {spec['kind']!r}")
        self.spec = copy.deepcopy(spec)
        self.kind = spec["kind"]
        height, width = spec["size"]
        self.camera = LightFieldCamera(height, width, camera_values["focal"], camera_values["baseline"],
                                       camera_values["kappa"], trainable=camera_trainable and self.kind == "nerf")
        field_class = NerfField if self.kind == "nerf" else NelfField
        self.field = field_class(**spec["field"], factor_ranks=spec["factor_ranks"])

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
        if self.kind == "nelf":
            return self.field(self.normalise_rays(s, t, x, y)), torch.zeros_like(s)
        origins, directions = self.camera.rays(s, t, x, y)
        depths = stratified_inverse_depth(origins.shape[0], self.spec["samples"], self.spec["near"],
                                          self.spec["far"], perturb, generator, device=origins.device)
        points = origins.unsqueeze(1) + directions.unsqueeze(1) * depths.unsqueeze(-1)
        unit_dirs = directions / directions.norm(dim=-1, keepdim=True)
        rgb, sigma = self.field(self.normalise_points(points).reshape(-1, 3),
                                unit_dirs.unsqueeze(1).expand_as(points).reshape(-1, 3))
        samples = depths.shape[1]
        colour, depth, _ = volume_render(rgb.reshape(-1, samples, 3), sigma.reshape(-1, samples),
                                         depths, directions)
        return colour, depth

    @torch.no_grad()
    def render_view(self, s: float, t: float, chunk_rays: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Render the view at (fractional) grid offset (s, t): float RGB (H, W, 3) and depth (H, W)."""
        height, width = self.spec["size"]
        device = self.camera.log_focal.device
        ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                                torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        colours, depths = [], []
        for start in range(0, xs.numel(), chunk_rays):
            x, y = xs[start:start + chunk_rays], ys[start:start + chunk_rays]
            colour, depth = self(torch.full_like(x, s), torch.full_like(x, t), x, y)
            colours.append(colour)
            depths.append(depth)
        colour = torch.cat(colours).reshape(height, width, 3).cpu().numpy()
        depth = torch.cat(depths).reshape(height, width).cpu().numpy()
        return colour, depth


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] → 8-bit, rounding to nearest."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


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

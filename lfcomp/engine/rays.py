"""All pixels of a light field as training rays, sampled in random batches on the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lfcomp.errors import LfcompError

__all__ = ["RayBatches"]


@dataclass
class RayBatches:
    """All pixels of a light field as training rays; samples random batches on the device."""

    colours: torch.Tensor  # (U·V·H·W, 3) float in [0, 1]
    grid: tuple[int, int]
    size: tuple[int, int]
    generator: torch.Generator
    training_views: torch.Tensor  # flat indices u·V + v of the views rays are drawn from

    @classmethod
    def from_views(cls, views: np.ndarray, device: torch.device, seed: int,
                   holdout: list[list[int]] | None = None) -> RayBatches:
        """All pixels of all views except the ``holdout`` views [[u, v], ...]."""
        (U, V), size = views.shape[:2], views.shape[2:4]
        colours = torch.from_numpy(views.reshape(-1, 3)).to(device=device, dtype=torch.float32) / 255.0
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        excluded = {int(u) * V + int(v) for u, v in holdout or []}
        training = torch.tensor([i for i in range(U * V) if i not in excluded], device=device)
        if training.numel() == 0:
            raise LfcompError("train.holdout_views", "every view is held out; nothing to train on")
        return cls(colours, (int(U), int(V)), (int(size[0]), int(size[1])), generator, training)

    def sample(self, batch: int) -> tuple[torch.Tensor, ...]:
        """(s, t, x, y, target colour) of ``batch`` random rays of the training views."""
        (U, V), (H, W) = self.grid, self.size
        device = self.colours.device
        pick = torch.randint(0, self.training_views.numel(), (batch,), generator=self.generator, device=device)
        view = self.training_views[pick]
        pixel = torch.randint(0, H * W, (batch,), generator=self.generator, device=device)
        index = view * (H * W) + pixel
        x = (pixel % W).float()
        y = (pixel // W).float()
        s = (view % V).float() - (V - 1) / 2.0
        t = (view // V).float() - (U - 1) / 2.0
        return s, t, x, y, self.colours[index]

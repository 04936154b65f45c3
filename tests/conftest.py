"""Shared test helpers: tiny synthetic light fields with real parallax."""

from __future__ import annotations

import numpy as np


def _texture(rng: np.random.Generator, waves: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random sinusoid parameters (frequency vectors, phases, amplitudes) for a smooth RGB texture."""
    freqs = rng.uniform(-0.6, 0.6, size=(3, waves, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(3, waves))
    amps = rng.uniform(5, 12, size=(3, waves))
    return freqs, phases, amps


def _shade(texture: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray, y: np.ndarray,
           base: float) -> np.ndarray:
    """Evaluate a texture at continuous coordinates (x, y) -> (H, W, 3) float."""
    freqs, phases, amps = texture
    angle = (x[..., None, None] * freqs[..., 0] + y[..., None, None] * freqs[..., 1] + phases)
    return base + (amps * np.sin(angle)).sum(axis=-1)


def make_synthetic_lightfield(U: int = 5, V: int = 5, H: int = 32, W: int = 32, seed: int = 0,
                              disparities: tuple[float, float] = (-0.75, 1.25),
                              vertical_scale: float = 1.0) -> np.ndarray:
    """A (U, V, H, W, 3) uint8 light field: a textured background plane and a textured square in front.

    Convention (that of the HCI benchmark and ``lfcomp.models.camera``): the view at grid offset (s, t)
    (see ``view_grid_positions``) is I_view(x, y) = I_centre(x + d*s, y + d*t) for a surface of
    disparity d. The background has disparity -0.75 px and the square +1.25 px per view step, so
    the square moves against the background (occlusions, fractional shifts). Textures are
    evaluated analytically at the shifted coordinates, so every view is an exact render, not an
    interpolation. ``disparities`` sets (background, square); ``vertical_scale`` makes a row step
    that many column steps (a gantry with unequal spacing; −1: rows stored the other way).
    """
    rng = np.random.default_rng(seed)
    background, foreground = _texture(rng), _texture(rng)
    d_background, d_foreground = disparities
    half = min(H, W) / 4
    y, x = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    views = np.empty((U, V, H, W, 3), dtype=np.uint8)
    for u in range(U):
        for v in range(V):
            s, t = v - (V - 1) / 2, (u - (U - 1) / 2) * vertical_scale
            bx, by = x + d_background * s, y + d_background * t  # centre-view coordinates of each pixel
            fx, fy = x + d_foreground * s, y + d_foreground * t
            image = _shade(background, bx, by, base=100.0)
            inside = (np.abs(fx - (W - 1) / 2) < half) & (np.abs(fy - (H - 1) / 2) < half)
            image[inside] = _shade(foreground, fx, fy, base=170.0)[inside]
            views[u, v] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return views

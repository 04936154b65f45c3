"""Pseudo-video sequence (PVS) scan orders: which view of the U×V grid becomes frame 0, 1, 2, …

* ``serpentine`` (default): row 0 left→right, row 1 right→left, row 2 left→right, … Every two
  consecutive frames are neighbouring views (one grid step apart).
* ``spiral``: starts at the centre view ((U-1)//2, (V-1)//2) and walks outward in square rings
  (right 1, down 1, left 2, up 2, right 3, …), skipping positions outside the grid. On a square
  grid every step is to a neighbouring view; on a non-square grid the walk jumps where it leaves
  the grid.
* ``raster``: row by row, each left→right (jumps back at the end of each row).

Views are addressed as (u, v) = (row, column), as in ``LightField.views[u, v]``.

One more "scan" is not a PVS but a floor (``lfcomp.evaluation.floors``): ``centre`` codes only the
centre view, as one frame, and the decoder copies it to every view (anchor ``centre_hevc444``).
"""

from __future__ import annotations

import numpy as np

from lfcomp.errors import LfcompError

SCANS = ("serpentine", "spiral", "raster")
CENTRE = "centre"  # one frame, the centre view, copied to every view
ANCHOR_SCANS = (*SCANS, CENTRE)


def scan_order(U: int, V: int, scan: str = "serpentine") -> list[tuple[int, int]]:
    """The (u, v) of each frame of the PVS, in frame order: a permutation of the U×V grid."""
    if U < 1 or V < 1:
        raise LfcompError("scan", f"grid must be at least 1×1, got {U}×{V}")
    if scan == "raster":
        return [(u, v) for u in range(U) for v in range(V)]
    if scan == "serpentine":
        return [(u, v if u % 2 == 0 else V - 1 - v) for u in range(U) for v in range(V)]
    if scan == "spiral":
        return _spiral(U, V)
    raise LfcompError("--scan", f"unknown scan order {scan!r} (choose from {', '.join(SCANS)})")


def _spiral(U: int, V: int) -> list[tuple[int, int]]:
    u, v = (U - 1) // 2, (V - 1) // 2
    order = [(u, v)]
    directions = ((0, 1), (1, 0), (0, -1), (-1, 0))  # right, down, left, up
    step, d = 1, 0
    while len(order) < U * V:
        for _ in range(2):  # each step length is walked twice (e.g. right 1, down 1), then grows
            du, dv = directions[d % 4]
            for _ in range(step):
                u, v = u + du, v + dv
                if 0 <= u < U and 0 <= v < V:
                    order.append((u, v))
            d += 1
        step += 1
    return order


def frame_index(order: list[tuple[int, int]], U: int, V: int) -> np.ndarray:
    """The inverse of a scan order: (U, V) int array giving the frame number of each view."""
    index = np.full((U, V), -1, dtype=np.int64)
    for frame, (u, v) in enumerate(order):
        index[u, v] = frame
    if len(order) != U * V or (index < 0).any():
        raise LfcompError("scan", f"order of {len(order)} positions is not a permutation of the {U}×{V} grid")
    return index


def to_sequence(views: np.ndarray, order: list[tuple[int, int]]) -> np.ndarray:
    """(U, V, ...) → (U·V, ...): the views as frames in scan order."""
    return np.stack([views[u, v] for u, v in order])


def from_sequence(frames: np.ndarray, order: list[tuple[int, int]], U: int, V: int) -> np.ndarray:
    """(U·V, ...) → (U, V, ...): the inverse of ``to_sequence``."""
    if len(frames) != len(order):
        raise LfcompError("scan", f"{len(frames)} frames for a scan order of {len(order)} views")
    views = np.empty((U, V, *frames.shape[1:]), dtype=frames.dtype)
    for frame, (u, v) in zip(frames, order):
        views[u, v] = frame
    return views


def coded_order(U: int, V: int, scan: str) -> list[tuple[int, int]]:
    """The (u, v) of each coded frame: the scan order, or the centre view alone for ``centre``."""
    return [((U - 1) // 2, (V - 1) // 2)] if scan == CENTRE else scan_order(U, V, scan)


def views_from_frames(frames: np.ndarray, U: int, V: int, scan: str) -> np.ndarray:
    """(frames, ...) → (U, V, ...): ``from_sequence``, or the one frame copied to every view for ``centre``."""
    if scan == CENTRE:
        if len(frames) != 1:
            raise LfcompError("scan", f"{len(frames)} frames for the centre view alone")
        return np.broadcast_to(frames[0], (U, V, *frames.shape[1:])).copy()
    return from_sequence(frames, scan_order(U, V, scan), U, V)

"""What one decode may cost (memory, rendered pixels, network evaluations, file size).

Kept apart from the decoder so that the CLI can show the defaults without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "GIB", "DecodeLimits"]

GIB = 1 << 30


@dataclass(frozen=True)
class DecodeLimits:
    """What one decode may cost; a bitstream whose architecture implies more is refused up front.

    The defaults fit a workstation: 8 GiB of memory, 2^28 rendered pixels (0.75 GiB of 8-bit RGB)
    and 10^4 TMAC of network evaluations (the paper preset's full decode of a 9×9×512² scene is
    about 1.6·10^3 TMAC: tens of seconds on a GPU, hours on a CPU).
    """

    max_memory: int = 8 * GIB  # bytes
    max_pixels: int = 1 << 28  # views × pixels one decode may render
    max_macs: float = 1e16  # multiply-accumulates one decode may spend
    max_file_bytes: int = 64 << 20  # a bitstream larger than this is not read at all


DEFAULT_LIMITS = DecodeLimits()

"""lfcomp: light field compression via a compact neural scene representation (QDLR-NeRF)."""

__version__ = "0.1.0"

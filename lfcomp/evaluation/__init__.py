"""Evaluation: metrics of a decoded light field, and the tables and figures comparing the codecs.

* ``metrics`` and ``evaluate``: PSNR (RGB and Y) and bpp of a decoded light field, its metrics.json;
* ``results``: the one loader of metrics.json, every rate point as a ``RatePoint``;
* ``tables``: the one table writer (cells, Markdown, atomic CSV and text);
* ``summary``: the codecs' rate-point tables (``lfcomp summarize``);
* ``bd`` and ``report``: Bjøntegaard deltas, rd.csv, Table 1 and Table 2 (``lfcomp report``);
* ``plots``: RD curves, per-view PSNR, error maps, the free-viewpoint clip (``lfcomp plots``).

The names below are imported from their module on first use, so that importing this package
stays cheap: it never imports torch, and matplotlib only when a figure is drawn.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "evaluate_lightfield": "evaluate", "write_metrics": "evaluate",
    "distortion_metrics": "metrics", "read_metrics": "metrics",
    "RatePoint": "results", "StageResult": "results", "load_points": "results",
    "summarize": "summary",
    "bd_psnr": "bd", "bd_rate": "bd", "build_report": "report",
    "make_figures": "plots", "write_clip": "plots",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

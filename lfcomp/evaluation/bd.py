"""Bjøntegaard deltas (BD-PSNR, BD-rate) between two rate-distortion curves, over a bpp range.

The curves are fitted with the ``bjontegaard`` package (FAU-LMS), on log10(rate):

* ``cubic``: VCEG-M33 (Bjøntegaard 2001), a least-squares cubic polynomial through all points
  of each curve (PSNR of log-rate for BD-PSNR, log-rate of PSNR for BD-rate). The primary figure.
* ``pchip``: piecewise cubic Hermite interpolation (VCEG-AL22 / JVET CTC style), reported beside it.

Unlike the package, the integral is restricted to a rate range, by default (0, 0.2] bpp as in the
paper's Table 1:

* BD-PSNR averages PSNR_test − PSNR_anchor over log-rates in the overlap of the two curves'
  rate spans, intersected with the range.
* BD-rate averages log-rate_test − log-rate_anchor over PSNRs in the overlap of the two curves'
  PSNR spans, cut where either fitted curve leaves the rate range (e.g. above 0.2 bpp), and
  is reported in percent: (10^mean − 1) · 100 (negative: the test codec needs fewer bits).

The fits use the points inside the range plus, on each side, the nearest point outside it (so
that the fitted curve spans the range's ends): a global cubic through a wide QP sweep (e.g. up
to 3 bpp) would otherwise be shaped by points far outside the range. With ``bracket=False``
all points are used. When a value cannot be computed (too few points, no overlap, overlap
outside the range) the result has ``value=None`` and a one-line ``reason`` instead.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHODS = ("cubic", "pchip")
MIN_POINTS = {"cubic": 4, "pchip": 2}
DEFAULT_RATE_RANGE = (0.0, 0.2)


@dataclass
class BDResult:
    """A BD value, or None and the reason it cannot be computed.

    ``interval`` is the integration range: (low, high) in bpp for BD-PSNR, in dB for BD-rate.
    """

    metric: str  # "psnr" (dB) or "rate" (%)
    method: str
    value: float | None
    reason: str | None = None
    interval: tuple[float, float] | None = None
    #: why there is no value, for table cells: "few_points", "no_overlap", "outside_range", "bad_rate"
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _curve(rates: Any, psnrs: Any, name: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Sorted (rate, psnr) arrays without unusable points, or a reason they are unusable."""
    pairs = [(float(r), float(p)) for r, p in zip(rates, psnrs)
             if r is not None and p is not None and math.isfinite(float(r)) and math.isfinite(float(p))]
    if any(r <= 0 for r, _ in pairs):
        return np.empty(0), np.empty(0), f"{name} has a rate ≤ 0"
    pairs.sort()
    return np.array([r for r, _ in pairs]), np.array([p for _, p in pairs]), None


def select_points(rates: np.ndarray, psnrs: np.ndarray,
                  rate_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The points of a rate-sorted curve inside ``rate_range`` plus the nearest one outside on each side."""
    low, high = rate_range
    inside = (rates >= low) & (rates <= high)
    below, above = np.flatnonzero(rates < low), np.flatnonzero(rates > high)
    if below.size:
        inside[below[-1]] = True
    if above.size:
        inside[above[0]] = True
    return rates[inside], psnrs[inside]


def _fit(x: np.ndarray, y: np.ndarray, method: str):
    """Fitted y(x) with .integrate(a, b) and __call__, through bjontegaard's interpolators.

    x must be increasing; points with equal x are merged (mean y) since interpolants need distinct x.
    """
    from bjontegaard.interpolation import interpolate

    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # polyfit's RankWarning on nearly collinear points
        return interpolate(ux, uy, method)


def _too_few(name: str, count: int, method: str) -> str | None:
    need = MIN_POINTS[method]
    if count < need:
        return (f"{name} has {count} rate point{'s' if count != 1 else ''}; "
                f"the {method} fit needs at least {need}")
    return None


def _fmt_range(low: float, high: float, unit: str) -> str:
    return f"{low:.4g}–{high:.4g} {unit}"


def _check(method: str, rate_range: tuple[float, float]) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown BD method {method!r} (choose from {', '.join(METHODS)})")
    if not (rate_range[0] >= 0 and rate_range[1] > rate_range[0]):
        raise ValueError(f"rate range must be 0 ≤ low < high, got {rate_range}")


def _prepare(metric: str, rate_anchor: Any, psnr_anchor: Any, rate_test: Any, psnr_test: Any, method: str,
             rate_range: tuple[float, float]):
    """Both curves sorted by rate, or a BDResult saying why there is nothing to compute."""
    _check(method, rate_range)
    ra, pa, reason = _curve(rate_anchor, psnr_anchor, "anchor")
    rt, pt, reason_t = _curve(rate_test, psnr_test, "test")
    if reason or reason_t:
        return BDResult(metric, method, None, reason or reason_t, code="bad_rate")
    reason = _too_few("anchor", len(np.unique(ra)), method) or _too_few("test", len(np.unique(rt)), method)
    if reason:
        return BDResult(metric, method, None, reason, code="few_points")
    return ra, pa, rt, pt


def _fitted_points(metric, method, ra, pa, rt, pt, rate_range, bracket):
    """The points the fits use (see ``select_points``), or a BDResult when there are too few."""
    if bracket:
        (ra, pa), (rt, pt) = select_points(ra, pa, rate_range), select_points(rt, pt, rate_range)
    base_a, base_t = (ra, rt) if metric == "psnr" else (pa, pt)
    reason = _too_few("anchor", len(np.unique(base_a)), method) or _too_few("test", len(np.unique(base_t)), method)
    if reason:
        if bracket:
            reason += f" (inside {_fmt_range(*rate_range, 'bpp')} and one point beyond each end)"
        return BDResult(metric, method, None, reason, code="few_points")
    return ra, pa, rt, pt


def bd_psnr(rate_anchor: Any, psnr_anchor: Any, rate_test: Any, psnr_test: Any, method: str = "cubic",
            rate_range: tuple[float, float] = DEFAULT_RATE_RANGE, bracket: bool = True) -> BDResult:
    """Mean PSNR gain (dB) of the test curve over the anchor curve, over the rates in ``rate_range``."""
    prepared = _prepare("psnr", rate_anchor, psnr_anchor, rate_test, psnr_test, method, rate_range)
    if isinstance(prepared, BDResult):
        return prepared
    ra, pa, rt, pt = prepared
    low, high = max(ra[0], rt[0]), min(ra[-1], rt[-1])
    if low >= high:
        return BDResult("psnr", method, None, "curves do not overlap in rate (anchor "
                        f"{_fmt_range(ra[0], ra[-1], 'bpp')}, test {_fmt_range(rt[0], rt[-1], 'bpp')})",
                        code="no_overlap")
    in_low, in_high = max(low, rate_range[0]), min(high, rate_range[1])
    if in_low >= in_high:
        return BDResult("psnr", method, None, f"rate overlap {_fmt_range(low, high, 'bpp')} lies outside "
                        f"the range {_fmt_range(*rate_range, 'bpp')}", code="outside_range")
    fitted = _fitted_points("psnr", method, ra, pa, rt, pt, rate_range, bracket)
    if isinstance(fitted, BDResult):
        return fitted
    ra, pa, rt, pt = fitted
    a, b = math.log10(in_low), math.log10(in_high)
    fa, ft = _fit(np.log10(ra), pa, method), _fit(np.log10(rt), pt, method)
    value = (float(ft.integrate(a, b)) - float(fa.integrate(a, b))) / (b - a)
    return BDResult("psnr", method, float(value), None, (float(in_low), float(in_high)))


def _psnr_limit(f, low: float, high: float, level: float, side: str) -> float | None:
    """Within [low, high], the PSNR interval where log-rate f(p) stays on the ``side`` of ``level``:
    for side="below", the largest p0 such that f ≤ level on [low, p0] (None when f(low) > level);
    for side="above", the smallest p0 such that f ≥ level on [p0, high] (None when f(high) < level)."""
    from scipy.optimize import brentq

    grid = np.linspace(low, high, 2001)
    values = np.asarray(f(grid), dtype=float) - level
    bad = values > 0 if side == "below" else values < 0
    if side == "below":
        if bad[0]:
            return None
        if not bad.any():
            return high
        i = int(np.argmax(bad))  # first sample above the level
        return float(brentq(lambda p: float(f(p)) - level, grid[i - 1], grid[i]))
    if bad[-1]:
        return None
    if not bad.any():
        return low
    i = len(bad) - 1 - int(np.argmax(bad[::-1]))  # last sample below the level
    return float(brentq(lambda p: float(f(p)) - level, grid[i], grid[i + 1]))


def bd_rate(rate_anchor: Any, psnr_anchor: Any, rate_test: Any, psnr_test: Any, method: str = "cubic",
            rate_range: tuple[float, float] = DEFAULT_RATE_RANGE, bracket: bool = True) -> BDResult:
    """Mean rate difference (%) of the test curve against the anchor curve at equal PSNR, over the
    PSNRs where both curves lie inside ``rate_range``."""
    prepared = _prepare("rate", rate_anchor, psnr_anchor, rate_test, psnr_test, method, rate_range)
    if isinstance(prepared, BDResult):
        return prepared
    ra, pa, rt, pt = prepared
    low, high = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    if low >= high:
        return BDResult("rate", method, None, "curves do not overlap in PSNR (anchor "
                        f"{_fmt_range(pa.min(), pa.max(), 'dB')}, test {_fmt_range(pt.min(), pt.max(), 'dB')})",
                        code="no_overlap")
    outside = BDResult("rate", method, None, f"in their PSNR overlap {_fmt_range(low, high, 'dB')} the curves "
                       f"do not both lie inside the range {_fmt_range(*rate_range, 'bpp')}", code="outside_range")
    fitted = _fitted_points("rate", method, ra, pa, rt, pt, rate_range, bracket)
    if isinstance(fitted, BDResult):
        return outside if _outside(ra, rt, rate_range) else fitted
    ra, pa, rt, pt = fitted
    in_low, in_high = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    if in_low >= in_high:
        return outside
    fa, ft = _fit(pa, np.log10(ra), method), _fit(pt, np.log10(rt), method)
    for f in (fa, ft):
        top = _psnr_limit(f, in_low, in_high, math.log10(rate_range[1]), "below")
        bottom = _psnr_limit(f, in_low, in_high, math.log10(rate_range[0]), "above") if rate_range[0] > 0 else in_low
        if top is None or bottom is None or bottom >= top:
            return outside
        in_low, in_high = bottom, top
    mean_log = (float(ft.integrate(in_low, in_high)) - float(fa.integrate(in_low, in_high))) / (in_high - in_low)
    percent = (10.0 ** mean_log - 1.0) * 100.0
    return BDResult("rate", method, float(percent), None, (float(in_low), float(in_high)))


def _outside(ra: np.ndarray, rt: np.ndarray, rate_range: tuple[float, float]) -> bool:
    """True when one of the curves has no point inside the rate range and lies wholly on one side of it."""
    low, high = rate_range
    return any(r[0] > high or r[-1] < low for r in (ra, rt))


def bd_all(rate_anchor: Any, psnr_anchor: Any, rate_test: Any, psnr_test: Any,
           rate_range: tuple[float, float] = DEFAULT_RATE_RANGE, bracket: bool = True) -> dict[str, BDResult]:
    """BD-PSNR and BD-rate with both methods: keys ``psnr_cubic``, ``psnr_pchip``, ``rate_cubic``, ``rate_pchip``."""
    results = {}
    for metric, function in (("psnr", bd_psnr), ("rate", bd_rate)):
        for method in METHODS:
            results[f"{metric}_{method}"] = function(rate_anchor, psnr_anchor, rate_test, psnr_test, method,
                                                     rate_range, bracket)
    return results

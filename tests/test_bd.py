"""Bjøntegaard deltas: against a hand-computed VCEG-M33 cubic fit, pchip, the rate range and the
cases where no number can be given."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import PchipInterpolator

from lfcomp.evaluation.bd import bd_all, bd_psnr, bd_rate, select_points

# The worked example of shared/notes/anchors-hevc-bd.md (all rates inside 0–0.2 bpp).
ANCHOR = ([0.01, 0.03, 0.07, 0.15], [28.0, 31.5, 34.2, 36.9])
TEST = ([0.012, 0.028, 0.06, 0.13], [29.1, 32.4, 35.0, 37.4])


def _hand_cubic_bd_psnr(anchor, test, low=None, high=None):
    """VCEG-M33 by hand: cubic polyfit of PSNR over ln(rate), integrated over the common log-rate range."""
    (ra, pa), (rt, pt) = anchor, test
    la, lt = np.log(ra), np.log(rt)
    lo = max(la.min(), lt.min()) if low is None else np.log(low)
    hi = min(la.max(), lt.max()) if high is None else np.log(high)
    ia, it = np.polyint(np.polyfit(la, pa, 3)), np.polyint(np.polyfit(lt, pt, 3))
    return ((np.polyval(it, hi) - np.polyval(it, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo)


def _hand_cubic_bd_rate(anchor, test):
    (ra, pa), (rt, pt) = anchor, test
    pa, pt = np.asarray(pa), np.asarray(pt)
    lo, hi = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    ia, it = np.polyint(np.polyfit(pa, np.log(ra), 3)), np.polyint(np.polyfit(pt, np.log(rt), 3))
    mean = ((np.polyval(it, hi) - np.polyval(it, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo)
    return (np.exp(mean) - 1) * 100


def test_cubic_matches_the_hand_computed_vceg_m33_fit():
    anchor = tuple(np.array(x) for x in ANCHOR)
    test = tuple(np.array(x) for x in TEST)
    psnr, rate = bd_psnr(*ANCHOR, *TEST, "cubic"), bd_rate(*ANCHOR, *TEST, "cubic")
    assert psnr.value == pytest.approx(_hand_cubic_bd_psnr(anchor, test), abs=1e-10)
    assert rate.value == pytest.approx(_hand_cubic_bd_rate(anchor, test), abs=1e-8)
    assert psnr.value == pytest.approx(1.089319, abs=5e-7)  # the notes' hand-computed values
    assert rate.value == pytest.approx(-28.005383, abs=5e-7)
    assert psnr.interval == pytest.approx((0.012, 0.13)) and rate.interval == pytest.approx((29.1, 36.9))
    assert psnr.reason is None and psnr.code is None


def test_pchip_matches_dense_integration_of_scipy_pchip():
    value = bd_psnr(*ANCHOR, *TEST, "pchip").value
    x = np.linspace(np.log10(0.012), np.log10(0.13), 200001)
    fa = PchipInterpolator(np.log10(ANCHOR[0]), ANCHOR[1])
    ft = PchipInterpolator(np.log10(TEST[0]), TEST[1])
    assert value == pytest.approx(np.trapezoid(ft(x) - fa(x), x) / (x[-1] - x[0]), abs=1e-8)
    assert value == pytest.approx(1.094973, abs=5e-7)
    assert bd_rate(*ANCHOR, *TEST, "pchip").value == pytest.approx(-28.0378, abs=5e-5)


def test_the_rate_range_limits_the_integral():
    assert bd_psnr(*ANCHOR, *TEST, "pchip", rate_range=(0.02, 0.1)).value == pytest.approx(1.2054, abs=5e-5)
    anchor = tuple(np.array(x) for x in ANCHOR)
    test = tuple(np.array(x) for x in TEST)
    for low, high in [(0.02, 0.1), (0.0, 0.1)]:
        result = bd_psnr(*ANCHOR, *TEST, "cubic", rate_range=(low, high))
        expected = _hand_cubic_bd_psnr(anchor, test, max(low, 0.012), high)
        assert result.value == pytest.approx(expected, abs=1e-10)
        assert result.interval == pytest.approx((max(low, 0.012), high))
    # Inside 0–0.05 bpp the anchor keeps 0.01, 0.03 and the bracketing 0.07: too few for a cubic.
    assert bd_psnr(*ANCHOR, *TEST, "cubic", rate_range=(0.0, 0.05)).code == "few_points"
    # BD-rate: the PSNR interval stops where a fitted curve reaches the top of the range.
    rate = bd_rate(*ANCHOR, *TEST, "pchip", rate_range=(0.0, 0.05))
    fa = PchipInterpolator(ANCHOR[1][:3], np.log10(ANCHOR[0][:3]))  # the points inside + 0.07 beyond 0.05
    assert fa(rate.interval[1]) == pytest.approx(np.log10(0.05), abs=1e-9)  # the anchor hits 0.05 bpp first
    assert rate.interval[0] == pytest.approx(29.1)


def test_points_far_outside_the_range_do_not_change_the_fit():
    wide_anchor = ([0.004, *ANCHOR[0], 0.6, 2.0], [24.0, *ANCHOR[1], 42.0, 47.0])
    wide_test = ([*TEST[0], 0.5, 1.5], [*TEST[1], 41.0, 44.5])
    rates, _ = select_points(np.array(wide_anchor[0]), np.array(wide_anchor[1]), (0.0, 0.2))
    assert rates.tolist() == [0.004, 0.01, 0.03, 0.07, 0.15, 0.6]  # inside + the nearest one beyond 0.2
    bracketed = bd_psnr(*wide_anchor, *wide_test, "cubic").value
    wider = ([*wide_anchor[0], 3.0], [*wide_anchor[1], 44.0])  # saturating at high rates
    assert bd_psnr(*wider, *wide_test, "cubic").value == pytest.approx(bracketed, abs=1e-12)
    # With every point in the least-squares cubic, a point at 3 bpp moves the result inside 0–0.2 bpp.
    everything = bd_psnr(*wide_anchor, *wide_test, "cubic", bracket=False).value
    assert bd_psnr(*wider, *wide_test, "cubic", bracket=False).value != pytest.approx(everything, abs=1e-3)


def test_identical_and_shifted_curves():
    for method in ("cubic", "pchip"):
        assert bd_psnr(*ANCHOR, *ANCHOR, method).value == pytest.approx(0, abs=1e-12)
        assert bd_rate(*ANCHOR, *ANCHOR, method).value == pytest.approx(0, abs=1e-9)
        better = (ANCHOR[0], [p + 1.0 for p in ANCHOR[1]])
        assert bd_psnr(*ANCHOR, *better, method).value == pytest.approx(1.0, abs=1e-9)
        half = ([r / 2 for r in ANCHOR[0]], ANCHOR[1])
        assert bd_rate(*ANCHOR, *half, method).value == pytest.approx(-50.0, abs=1e-6)


def test_one_rate_point_is_not_computable():
    results = bd_all([0.05], [33.0], *TEST)
    for key, result in results.items():
        assert result.value is None and result.code == "few_points", key
        assert "anchor has 1 rate point" in result.reason
    assert bd_psnr(*ANCHOR, [0.05], [33.0]).reason == "test has 1 rate point; the cubic fit needs at least 4"


def test_three_points_give_pchip_but_not_cubic():
    three = (TEST[0][:3], TEST[1][:3])
    assert bd_psnr(*ANCHOR, *three, "cubic").code == "few_points"
    assert bd_psnr(*ANCHOR, *three, "pchip").value is not None


def test_non_overlapping_curves_say_so():
    high_rates = ([0.3, 0.4, 0.5, 0.6], [30.0, 31.0, 32.0, 33.0])
    result = bd_psnr(*TEST, *high_rates)
    assert result.value is None and result.code == "no_overlap"
    assert "do not overlap in rate" in result.reason and "0.3–0.6 bpp" in result.reason
    brighter = ([0.01, 0.03, 0.07, 0.15], [40.0, 41.0, 42.0, 43.0])
    assert bd_rate(*TEST, *brighter).code == "no_overlap"
    # Curves that overlap only above 0.2 bpp: outside the range.
    a = ([0.1, 0.3, 0.5, 0.7], [30.0, 33.0, 35.0, 36.0])
    b = ([0.25, 0.35, 0.55, 0.9], [33.0, 34.0, 35.5, 37.0])
    assert bd_psnr(*a, *b).code == "outside_range"
    assert bd_psnr(*a, *b, rate_range=(0.0, 1.0)).value is not None


def test_unusable_points_are_dropped_or_reported():
    with_none = ([*ANCHOR[0], 0.2], [*ANCHOR[1], None])  # e.g. a lossless point (PSNR None)
    assert bd_psnr(*with_none, *TEST).value == pytest.approx(1.089319, abs=5e-7)
    assert bd_psnr([0.0, *ANCHOR[0][1:]], ANCHOR[1], *TEST).code == "bad_rate"
    with pytest.raises(ValueError, match="unknown BD method"):
        bd_psnr(*ANCHOR, *TEST, "linear")

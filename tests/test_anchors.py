"""Video anchors: PVS scan orders, the colour conversion, and coding through PyAV (x265, x264, SVT-AV1).

Light fields are tiny (3×3 views of 96×96; x265 output on 64×64 frames was seen to vary from run
to run, larger frames are reproducible) so the whole module takes a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_synthetic_lightfield
from lfcomp.anchors.colour import chroma_shape, planes_to_rgb, rgb_to_planes, rgb_to_ycbcr, ycbcr_to_rgb
from lfcomp.anchors.pvs import SCANS, frame_index, from_sequence, scan_order, to_sequence
from lfcomp.anchors.video import (
    anchor,
    bitstream_name,
    check_parameters,
    code_lightfield,
    decode_views,
    drop_x264_info,
    encode_views,
)
from lfcomp.cli.main import build_parser
from lfcomp.errors import LfcompError
from lfcomp.io.lightfield import LightField, read_lightfield, write_lightfield

av = pytest.importorskip("av")


# --------------------------------------------------------------------------- scan orders


def _steps(order):
    return [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(order, order[1:])]


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("grid", [(1, 1), (1, 4), (2, 2), (3, 3), (4, 4), (3, 5), (5, 3), (9, 9)])
def test_scan_orders_are_permutations_with_an_inverse(scan, grid):
    U, V = grid
    order = scan_order(U, V, scan)
    assert len(order) == U * V and set(order) == {(u, v) for u in range(U) for v in range(V)}
    index = frame_index(order, U, V)
    assert all(index[u, v] == k for k, (u, v) in enumerate(order))
    views = np.arange(U * V * 2).reshape(U, V, 2)
    sequence = to_sequence(views, order)
    assert [tuple(f) for f in sequence] == [tuple(views[u, v]) for u, v in order]
    assert np.array_equal(from_sequence(sequence, order, U, V), views)


def test_serpentine_alternates_direction_and_only_steps_to_neighbours():
    order = scan_order(3, 4, "serpentine")
    assert order[:4] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert order[4:8] == [(1, 3), (1, 2), (1, 1), (1, 0)]
    assert order[8:] == [(2, 0), (2, 1), (2, 2), (2, 3)]
    for U, V in [(9, 9), (4, 7), (7, 4)]:
        assert set(_steps(scan_order(U, V, "serpentine"))) == {1}


def test_raster_goes_row_by_row_left_to_right():
    assert scan_order(2, 3, "raster") == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert max(_steps(scan_order(5, 5, "raster"))) == 4 + 1  # the jump back at each row end


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9])
def test_spiral_starts_at_the_centre_and_grows_in_square_rings(n):
    order = scan_order(n, n, "spiral")
    centre = (n - 1) // 2
    assert order[0] == (centre, centre)
    assert set(_steps(order)) == {1}  # on a square grid every step goes to a neighbouring view
    # After k² views the visited set is a k×k square (odd k: centred on the centre view).
    for k in range(1, n + 1):
        first = order[: k * k]
        rows, cols = {u for u, _ in first}, {v for _, v in first}
        assert len(rows) == len(cols) == k, (k, first)
        if k % 2:
            assert min(rows) == centre - k // 2 and min(cols) == centre - k // 2


def test_spiral_on_a_non_square_grid_still_covers_it():
    order = scan_order(3, 7, "spiral")
    assert order[0] == (1, 3) and order[1:9] == [(1, 4), (2, 4), (2, 3), (2, 2), (1, 2), (0, 2), (0, 3), (0, 4)]


def test_unknown_scan_and_bad_orders_are_clean_errors():
    with pytest.raises(LfcompError, match="unknown scan order 'zigzag'"):
        scan_order(3, 3, "zigzag")
    with pytest.raises(LfcompError, match="not a permutation"):
        frame_index([(0, 0), (0, 0), (1, 1), (1, 0)], 2, 2)


# --------------------------------------------------------------------------- colour


def test_ycbcr_is_full_range_bt601():
    rgb = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 64, 32]], np.uint8)
    ycc = rgb_to_ycbcr(rgb)
    r, g, b = rgb.astype(float).T
    y = 0.299 * r + 0.587 * g + 0.114 * b
    np.testing.assert_allclose(ycc[:, 0], y, atol=1e-9)
    np.testing.assert_allclose(ycc[:, 1], 128 + (b - y) / 1.772, atol=1e-9)
    np.testing.assert_allclose(ycc[:, 2], 128 + (r - y) / 1.402, atol=1e-9)
    assert ycc[1].tolist() == pytest.approx([255, 128, 128])  # white: full range, no headroom
    np.testing.assert_allclose(ycbcr_to_rgb(ycc), rgb, atol=1e-9)  # exact inverse before rounding


def test_444_round_trip_is_within_one_level():
    levels = np.r_[np.arange(0, 256, 5), 254, 255]
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    cube = np.stack([r, g, b], axis=-1).reshape(-1, 1, 3).astype(np.uint8)  # every colour of a 54³ lattice
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    for image in (cube, noise):
        planes = rgb_to_planes(image, "444")
        assert all(p.dtype == np.uint8 and p.shape == image.shape[:2] for p in planes)
        back = planes_to_rgb(*planes, "444")
        assert np.abs(back.astype(int) - image).max() <= 1


def test_420_takes_2x2_chroma_means_and_repeats_them_back():
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # 6×8, constant over each 2×2 block
    y, cb, cr = rgb_to_planes(image, "420")
    assert y.shape == (6, 8) and cb.shape == cr.shape == (3, 4)
    assert np.abs(planes_to_rgb(y, cb, cr, "420").astype(int) - image).max() <= 1
    # Chroma is the rounded mean of the 2×2 block's chroma.
    textured = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    _, cb, _ = rgb_to_planes(textured, "420")
    expected = rgb_to_ycbcr(textured)[..., 1].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    assert np.array_equal(cb, np.clip(np.rint(expected), 0, 255).astype(np.uint8))
    # Odd sizes: chroma covers ⌈H/2⌉×⌈W/2⌉ and upsampling crops back.
    odd = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    planes = rgb_to_planes(odd, "420")
    assert planes[1].shape == chroma_shape(5, 7, "420") == (3, 4)
    assert planes_to_rgb(*planes, "420").shape == (5, 7, 3)


# --------------------------------------------------------------------------- video coding


@pytest.fixture(scope="module")
def views() -> np.ndarray:
    return make_synthetic_lightfield(3, 3, 96, 96, seed=3)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, views):
    path = tmp_path_factory.mktemp("anchor") / "lf.zarr"
    write_lightfield(LightField(views, {"source": "synthetic"}), path)
    return path


def test_hevc_bits_equal_the_stream_size_and_metrics_are_complete(reference, views, tmp_path):
    out = tmp_path / "scene" / "hevc444" / "qp30"
    metrics = anchor(reference, out, codec="hevc", chroma="444", qp=30, scene="scene")
    stream = out / "bitstream.hevc"
    assert stream.read_bytes()[:4] == b"\x00\x00\x00\x01"  # raw Annex-B, no container
    assert metrics["bytes"] == stream.stat().st_size and metrics["bits"] == 8 * stream.stat().st_size
    assert metrics["bpp"] == pytest.approx(metrics["bits"] / (3 * 3 * 96 * 96))
    assert b"x265" not in stream.read_bytes()  # info=0: no version/options SEI
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    for key in ("psnr_rgb", "psnr_y", "psnr_rgb_views", "psnr_y_views", "bytes", "bits", "bpp", "grid", "size",
                "codec", "qp", "chroma", "scan", "encode_seconds", "decode_seconds"):
        assert key in metrics, key
    assert (metrics["anchor"], metrics["codec"], metrics["chroma"], metrics["qp"], metrics["scan"]) == \
        ("hevc444", "hevc", "444", 30, "serpentine")
    assert metrics["grid"] == [3, 3] and metrics["size"] == [96, 96]
    assert np.array(metrics["psnr_rgb_views"]).shape == (3, 3)
    assert metrics["psnr_rgb"] == pytest.approx(np.mean(metrics["psnr_rgb_views"]), abs=1e-3)
    assert 30 < metrics["psnr_rgb"] < 60 and metrics["encode_seconds"] > 0 and metrics["decode_seconds"] > 0
    decoded = read_lightfield(out / "decoded.zarr")
    assert decoded.views.shape == views.shape and decoded.attrs["anchor"]["label"] == "hevc444"
    assert sorted(p.name for p in out.iterdir()) == ["bitstream.hevc", "decoded.zarr", "metrics.json"]


def test_anchor_metrics_match_lfcomp_evaluate(reference, tmp_path):
    """Same definitions as the neural codec's metrics: recompute them with ``lfcomp.evaluation.evaluate``."""
    from lfcomp.evaluation.evaluate import evaluate_lightfield

    out = tmp_path / "hevc420"
    metrics = anchor(reference, out, codec="hevc", chroma="420", qp=34)
    evaluated = evaluate_lightfield(reference, out / "decoded.zarr", out / "bitstream.hevc")
    for key, value in evaluated.items():
        assert metrics[key] == value, key


@pytest.mark.parametrize("chroma", ["444", "420"])
def test_higher_qp_gives_fewer_bytes_and_lower_psnr(views, chroma):
    results = [code_lightfield(views, "hevc", chroma, qp) for qp in (22, 32, 42)]
    sizes = [len(r.bitstream) for r in results]
    from lfcomp.evaluation.metrics import per_view_psnr

    psnrs = [per_view_psnr(views, r.decoded)[0].mean() for r in results]
    assert sizes[0] > sizes[1] > sizes[2], sizes
    assert psnrs[0] > psnrs[1] > psnrs[2], psnrs


def test_the_whole_sequence_has_one_intra_frame(views):
    data, _ = encode_views(views, "hevc", "444", 32)
    context = av.CodecContext.create("hevc", "r")
    types = []
    for packet in context.parse(data) + context.parse(None) + [None]:
        types += [frame.pict_type.name if hasattr(frame.pict_type, "name") else str(frame.pict_type)
                  for frame in context.decode(packet)]
    assert len(types) == 9 and types.count(types[0]) == 1 and types[0] in ("I", "1")


def test_scan_order_is_undone_by_the_decoder(views):
    """Each decoded view must resemble its own reference (not a neighbour's) whatever the scan."""
    from lfcomp.evaluation.metrics import per_view_psnr

    for scan in ("spiral", "raster"):
        result = code_lightfield(views, "hevc", "444", 24, scan=scan)
        rgb, _ = per_view_psnr(views, result.decoded)
        shifted = per_view_psnr(np.roll(views, 1, axis=1), result.decoded)[0]  # each view against a neighbour's
        assert rgb.min() > 35 and rgb.min() > shifted.max() + 3


def test_h264_and_av1_anchors(views):
    from lfcomp.evaluation.metrics import per_view_psnr

    h264 = code_lightfield(views, "h264", "444", 28)
    assert b"x264 - core" not in h264.bitstream  # the version/options SEI is removed
    assert per_view_psnr(views, h264.decoded)[0].mean() > 33
    av1 = code_lightfield(views, "av1", "420", 35)
    assert per_view_psnr(views, av1.decoded)[0].mean() > 30
    assert bitstream_name("av1") == "bitstream.obu" and bitstream_name("h264") == "bitstream.h264"


def test_drop_x264_info_removes_only_that_sei():
    sps, pps = b"\x00\x00\x00\x01\x67\x64\x00\x1f", b"\x00\x00\x00\x01\x68\xee\x3c\x80"
    sei = b"\x00\x00\x01\x06\x05\x20" + bytes(16) + b"x264 - core 164 - H.264/MPEG-4 AVC codec\x00\x80"
    other_sei = b"\x00\x00\x01\x06\x01\x01\x00\x80"
    idr = b"\x00\x00\x01\x65\x88\x84\x00\x33"
    assert drop_x264_info(sps + pps + sei + other_sei + idr) == sps + pps + other_sei + idr


def test_odd_sizes_are_padded_for_420(tmp_path):
    odd = make_synthetic_lightfield(2, 2, 97, 99, seed=0)
    result = code_lightfield(odd, "hevc", "420", 26)
    assert result.decoded.shape == odd.shape
    from lfcomp.evaluation.metrics import per_view_psnr

    assert per_view_psnr(odd, result.decoded)[0].min() > 30
    flat = np.empty((2, 2, 33, 35, 3), np.uint8)
    flat[...] = (200, 40, 90)
    assert np.abs(code_lightfield(flat, "hevc", "420", 20).decoded.astype(int) - flat).max() <= 2


def test_bad_parameters_and_broken_streams_are_clean_errors(views, reference, tmp_path):
    with pytest.raises(LfcompError, match="--chroma.*420 here, not 444"):
        check_parameters("av1", "444", 30, "serpentine")
    with pytest.raises(LfcompError, match="--qp.*0..51"):
        check_parameters("hevc", "444", 52, "serpentine")
    with pytest.raises(LfcompError, match="--codec.*unknown codec 'vvc'"):
        check_parameters("vvc", "444", 30, "serpentine")
    with pytest.raises(LfcompError, match="no such file"):
        anchor(tmp_path / "missing.zarr", tmp_path / "out", qp=30)
    assert not (tmp_path / "out").exists()
    with pytest.raises(LfcompError, match="libx265: encoding failed"):
        anchor(reference, tmp_path / "bad", qp=30, preset="bogus")
    assert not (tmp_path / "bad").exists()
    data, _ = encode_views(views, "hevc", "444", 40)
    with pytest.raises(LfcompError, match=r"decoded [0-8] frames, expected 9 for 3×3 views \(serpentine\)"):
        decode_views(data[: len(data) // 2], "hevc", (3, 3), (96, 96), "444", where="cut.hevc")
    with pytest.raises(LfcompError, match="expected 4 for 2×2 views"):
        decode_views(data, "hevc", (2, 2), (96, 96), "444")
    with pytest.raises(LfcompError, match="is 96×96 yuv444p, expected 96×96 yuv420p"):
        decode_views(data, "hevc", (3, 3), (96, 96), "420")


def test_anchor_report_and_plots_subcommands_parse_their_options():
    parser = build_parser()
    args = parser.parse_args(["anchor", "lf.zarr", "out", "--codec", "hevc", "--chroma", "420", "--qp", "32",
                              "--scan", "spiral", "--encoder-preset", "slow"])
    assert (args.codec, args.chroma, args.qp, args.scan, args.encoder_preset) == ("hevc", "420", 32, "spiral", "slow")
    args = parser.parse_args(["report", "summary", "a/metrics.json", "b/metrics.json", "--max-bpp", "0.1"])
    assert args.metrics == ["a/metrics.json", "b/metrics.json"] and args.anchors == ["hevc444", "hevc420"]
    args = parser.parse_args(["plots", "figs", "m.json", "--target-bpp", "0.05"])
    assert args.target_bpp == 0.05 and args.reference_codec is None

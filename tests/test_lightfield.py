"""Light field I/O (stage 1, ingest): formats, view order, transforms, errors, atomic writes."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import zarr
from PIL import Image

from conftest import make_synthetic_lightfield
from lfcomp.errors import LfcompError
from lfcomp.io.lightfield import (
    LightField,
    detect_format,
    ingest,
    ingest_to_zarr,
    load_image,
    read_lightfield,
    view_grid_positions,
    write_lightfield,
)

REPO = Path(__file__).resolve().parents[1]
COTTON = Path("/work/shared/data/hci_4d_lf_benchmark/cotton")
COTTON_CFG = """[intrinsics]
focal_length_mm = 100.0
image_resolution_x_px = {width}
image_resolution_y_px = {height}
sensor_size_mm = 35.0

[extrinsics]
num_cams_x = {V}
num_cams_y = {U}
baseline_mm = 25.0
focus_distance_m = 4.25

[meta]
disp_min = -1.6
disp_max = 1.5
frustum_disp_min = -2.0
frustum_disp_max = 2.0
"""


def marked_lightfield(U: int, V: int, H: int = 6, W: int = 8) -> np.ndarray:
    """Synthetic light field whose red channel is 10*row + col, so misplaced views are caught."""
    views = make_synthetic_lightfield(U, V, H, W)
    views[..., 0] = (10 * np.arange(U)[:, None] + np.arange(V)[None, :])[:, :, None, None]
    return views


def write_hci(folder: Path, views: np.ndarray, cfg: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    U, V, H, W, _ = views.shape
    for u in range(U):
        for v in range(V):
            Image.fromarray(views[u, v]).save(folder / f"input_Cam{u * V + v:03d}.png")
    if cfg:
        (folder / "parameters.cfg").write_text(COTTON_CFG.format(U=U, V=V, height=H, width=W))
    return folder


def write_folder(folder: Path, views: np.ndarray, pattern: str, base: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for u in range(views.shape[0]):
        for v in range(views.shape[1]):
            Image.fromarray(views[u, v]).save(folder / pattern.format(u=u + base, v=v + base))
    return folder


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit PNG (gray, RGB or RGBA) written by hand, rows 'Sub'-filtered: Pillow can't write these."""
    h, w, c = pixels.shape
    raw = pixels.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, -1)
    bpp = 2 * c
    filtered = raw.copy()
    filtered[:, bpp:] = raw[:, bpp:] - raw[:, :-bpp]  # Sub filter, modulo 256
    data = np.concatenate([np.ones((h, 1), np.uint8), filtered], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data))
                     + chunk(b"IEND", b""))


def raises_naming(*names: str):
    """pytest.raises(LfcompError) whose message contains every one of ``names``."""
    return pytest.raises(LfcompError, match="(?s)" + "".join(f"(?=.*{re.escape(n)})" for n in names))


# --------------------------------------------------------------------------- basics


def test_view_grid_positions_are_horizontal_then_vertical_offsets() -> None:
    pos = view_grid_positions(3, 5)
    assert pos.shape == (3, 5, 2)
    assert pos[0, 0].tolist() == [-2.0, -1.0]  # top-left: left of and above the centre
    assert pos[1, 2].tolist() == [0.0, 0.0]
    assert pos[2, 4].tolist() == [2.0, 1.0]


def test_synthetic_lightfield_has_parallax() -> None:
    views = make_synthetic_lightfield(5, 5, 32, 32)
    assert views.shape == (5, 5, 32, 32, 3) and views.dtype == np.uint8
    assert not np.array_equal(views[2, 0], views[2, 4])
    assert not np.array_equal(views[0, 2], views[4, 2])
    assert np.array_equal(views, make_synthetic_lightfield(5, 5, 32, 32))


def test_zarr_round_trip(tmp_path: Path) -> None:
    lf = LightField(make_synthetic_lightfield(3, 4, 10, 12), {"format": "hci", "crop": None, "camera": {"focal_px": 1.5}})
    write_lightfield(lf, tmp_path / "lf.zarr")
    back = read_lightfield(tmp_path / "lf.zarr")
    assert np.array_equal(back.views, lf.views) and back.attrs == lf.attrs
    assert back.grid == (3, 4) and back.size == (10, 12)
    array = zarr.open_group(tmp_path / "lf.zarr", mode="r")["views"]
    assert array.metadata.zarr_format == 3 and array.chunks == (1, 1, 10, 12, 3)


# --------------------------------------------------------------------------- formats


def test_hci_round_trip_row_major_order_and_camera(tmp_path: Path) -> None:
    views = marked_lightfield(3, 4)  # not square: the grid must come from parameters.cfg
    folder = write_hci(tmp_path / "scene", views)
    lf = ingest(folder)
    assert np.array_equal(lf.views, views)
    assert lf.views[1, 2, 0, 0, 0] == 12  # input_Cam006 = row 1, column 2
    attrs = lf.attrs
    assert attrs["format"] == "hci" and attrs["source"] == str(folder.resolve())
    assert attrs["original_grid"] == [3, 4] and attrs["original_size"] == [6, 8]
    assert attrs["view_offset"] == [0, 0] and attrs["crop"] is None and attrs["resize"] is None
    assert attrs["lfcomp_version"]
    assert attrs["camera"] == {"focal_px": pytest.approx(100 / 35 * 8), "baseline_mm": 25.0,
                               "focus_distance_m": 4.25, "disparity_range": [-1.6, 1.5],
                               "frustum_disparity_range": [-2.0, 2.0]}


def test_hci_without_parameters_is_square_and_has_no_camera(tmp_path: Path) -> None:
    views = marked_lightfield(3, 3)
    lf = ingest(write_hci(tmp_path / "scene", views, cfg=False), fmt="hci")
    assert np.array_equal(lf.views, views) and "camera" not in lf.attrs


@pytest.mark.parametrize(("pattern", "base"), [("view_{u:02d}_{v:02d}.png", 0), ("{u:02d}_{v:02d}.png", 0),
                                               ("img-{u}-{v}.bmp", 0), ("lf_2024_{u:03d}_{v:03d}.png", 1)])
def test_folder_round_trip_and_order(tmp_path: Path, pattern: str, base: int) -> None:
    views = marked_lightfield(3, 4)
    folder = write_folder(tmp_path / "views", views, pattern, base)
    assert detect_format(folder) == "folder"
    lf = ingest(folder)
    assert np.array_equal(lf.views, views)
    assert lf.attrs["format"] == "folder" and lf.attrs["original_grid"] == [3, 4]


def test_folder_of_jpegs_keeps_order(tmp_path: Path) -> None:
    views = np.zeros((2, 3, 8, 8, 3), np.uint8)
    views[..., 0] = (80 * np.arange(2)[:, None] + 40 * np.arange(3)[None, :])[:, :, None, None]
    lf = ingest(write_folder(tmp_path / "views", views, "img-{u}-{v}.jpg"), fmt="folder")
    assert np.abs(lf.views.astype(int) - views).max() <= 2


def test_image_modes_become_uint8_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # fully opaque: alpha is dropped (a transparent view is an error, test_malformed_inputs)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., 0]).save(tmp_path / "gray.png")
    deep = rng.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    deep[0, :3, 0] = [128, 129, 65535]  # round(x/257) differs from the high byte (x >> 8) here
    Image.fromarray(deep[..., 0]).save(tmp_path / "gray16.png")
    write_png16(tmp_path / "rgb16.png", deep)
    write_png16(tmp_path / "rgba16.png", np.concatenate([deep, np.full_like(deep[..., :1], 65535)], axis=-1))
    expected = np.round(deep / 257).astype(np.uint8)
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgba[..., :3])
    assert np.array_equal(load_image(tmp_path / "gray.png"), np.repeat(rgba[..., :1], 3, axis=-1))
    assert np.array_equal(load_image(tmp_path / "gray16.png"), np.repeat(expected[..., :1], 3, axis=-1))
    assert np.array_equal(load_image(tmp_path / "rgb16.png"), expected)
    assert np.array_equal(load_image(tmp_path / "rgba16.png"), expected)
    assert load_image(tmp_path / "rgb16.png")[0, :3, 0].tolist() == [0, 1, 255]


@pytest.mark.parametrize("kind", ["uint16", "float", "uint8"])
def test_epfl_mat_v5(tmp_path: Path, kind: str) -> None:
    expected = marked_lightfield(3, 4)
    weight = np.full(expected.shape[:-1] + (1,), 7, np.uint8)
    if kind == "uint16":
        data = np.concatenate([expected, weight], axis=-1).astype(np.uint16) * 257
        data[0, 0, 0, 0, 1] += 128  # still rounds to the same 8-bit value
    elif kind == "float":
        data = expected / 255.0  # 3 channels, no weight channel
    else:
        data = np.concatenate([expected, weight], axis=-1)
    scipy.io.savemat(tmp_path / "lf.mat", {"LF": data})
    lf = ingest(tmp_path / "lf.mat")
    assert np.array_equal(lf.views, expected)
    assert lf.attrs["format"] == "epfl-mat" and lf.attrs["original_grid"] == [3, 4]


def test_epfl_mat_v73_hdf5(tmp_path: Path) -> None:
    expected = marked_lightfield(3, 4)
    data = np.concatenate([expected, np.zeros(expected.shape[:-1] + (1,), np.uint8)], -1).astype(np.uint16) * 257
    with h5py.File(tmp_path / "lf.mat", "w", userblock_size=512) as f:  # MATLAB v7.3 layout
        f["LF"] = data.transpose()  # MATLAB stores dimensions reversed: (C, W, H, V, U)
    assert detect_format(tmp_path / "lf.mat") == "epfl-mat"
    assert np.array_equal(ingest(tmp_path / "lf.mat", fmt="epfl-mat").views, expected)


# --------------------------------------------------------------------------- transforms


def test_views_crop_size_in_order_and_recorded(tmp_path: Path) -> None:
    views = marked_lightfield(5, 5, 12, 16)
    folder = write_hci(tmp_path / "scene", views)
    lf = ingest(folder, views=(3, 2), crop=(8, 8), size=(4, 4))
    kept = views[1:4, 1:3, 2:10, 4:12]
    assert lf.views.shape == (3, 2, 4, 4, 3)
    assert lf.views[2, 1, 0, 0, 0] == 10 * 3 + 2  # marker of original view (3, 2) survives
    block = kept[1, 0, 2:4, 4:6].astype(float).mean(axis=(0, 1))
    assert np.abs(lf.views[1, 0, 1, 2].astype(float) - block).max() <= 0.5  # 2x2 area average
    attrs = lf.attrs
    assert attrs["original_grid"] == [5, 5] and attrs["original_size"] == [12, 16]
    assert attrs["view_offset"] == [1, 1]
    assert attrs["crop"] == {"top": 2, "left": 4, "height": 8, "width": 8}
    assert attrs["resize"] == {"from": [8, 8], "to": [4, 4]}
    assert attrs["camera"]["focal_px"] == pytest.approx(100 / 35 * 16 / 2)
    assert attrs["camera"]["disparity_range"] == pytest.approx([-0.8, 0.75])
    assert attrs["camera"]["frustum_disparity_range"] == pytest.approx([-1.0, 1.0])
    assert attrs["camera"]["baseline_mm"] == 25.0


def test_area_averaging_of_known_pattern(tmp_path: Path) -> None:
    views = np.zeros((1, 2, 4, 6, 3), np.uint8)
    views[..., ::2, :, :] = 100  # rows alternate 100/0 -> every 2x3 box averages to 50
    views[:, 1, :, 3:, 2] = 200  # right half of view (0, 1) has blue 200 (with the alternating rows)
    lf = ingest(write_folder(tmp_path / "views", views, "v_{u}_{v}.png"), size=(2, 2))
    assert lf.views[0, 0].tolist() == [[[50, 50, 50]] * 2] * 2
    assert lf.views[0, 1, :, 0].tolist() == [[50, 50, 50]] * 2
    assert lf.views[0, 1, :, 1].tolist() == [[50, 50, 200]] * 2


def test_crop_keeps_camera_in_pixels(tmp_path: Path) -> None:
    lf = ingest(write_hci(tmp_path / "scene", marked_lightfield(3, 3, 12, 16)), crop=(6, 6))
    assert lf.attrs["camera"]["focal_px"] == pytest.approx(100 / 35 * 16)
    assert lf.attrs["camera"]["disparity_range"] == [-1.6, 1.5]


def test_reingesting_a_zarr_composes_the_transforms(tmp_path: Path) -> None:
    views = marked_lightfield(5, 5, 12, 16)
    folder = write_hci(tmp_path / "scene", views)
    ingest_to_zarr(folder, tmp_path / "a.zarr", views=(4, 4), crop=(10, 10))
    lf = ingest_to_zarr(tmp_path / "a.zarr", tmp_path / "b.zarr", views=(2, 2), crop=(4, 6), size=(2, 3))
    assert np.array_equal(read_lightfield(tmp_path / "b.zarr").views, lf.views)
    attrs = lf.attrs
    assert attrs["format"] == "hci" and attrs["source"] == str(folder.resolve())
    assert attrs["view_offset"] == [0 + 1, 0 + 1] and attrs["original_grid"] == [5, 5]
    assert attrs["crop"] == {"top": 1 + 3, "left": 3 + 2, "height": 4, "width": 6}
    assert attrs["resize"] == {"from": [4, 6], "to": [2, 3]}
    assert attrs["camera"]["focal_px"] == pytest.approx(100 / 35 * 16 / 2)
    with raises_naming("b.zarr", "already resized"):
        ingest(tmp_path / "b.zarr", crop=(1, 1))


# --------------------------------------------------------------------------- errors


def test_missing_hci_view_is_named(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3))
    (folder / "input_Cam004.png").unlink()
    with raises_naming(str(folder), "input_Cam004.png", "missing"):
        ingest(folder)


def test_hci_duplicate_index_and_non_square_count(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3), cfg=False)
    (folder / "input_Cam0001.png").write_bytes((folder / "input_Cam001.png").read_bytes())
    with raises_naming("input_Cam001.png", "input_Cam0001.png", "duplicate"):
        ingest(folder)
    (folder / "input_Cam0001.png").unlink()
    (folder / "input_Cam008.png").unlink()
    with raises_naming(str(folder), "square grid"):
        ingest(folder)


def test_hci_parameters_for_another_resolution(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3))
    (folder / "parameters.cfg").write_text(COTTON_CFG.format(U=3, V=3, height=6, width=512))
    with raises_naming("parameters.cfg", "512", "8 px wide"):
        ingest(folder)


def test_folder_missing_and_duplicate_positions(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "views", marked_lightfield(2, 3), "view_{u:02d}_{v:02d}.png")
    (folder / "view_01_02.png").unlink()
    with raises_naming(str(folder), "(1, 2)", "missing"):
        ingest(folder)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / "view_01_02.png")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / "view_1_2.png")
    with raises_naming("view_01_02.png", "view_1_2.png"):
        ingest(folder, fmt="folder")


def test_mixed_view_sizes_name_file_and_sizes(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(2, 2), cfg=False)
    Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(folder / "input_Cam002.png")
    with raises_naming("input_Cam002.png", "6x9", "6x8", "input_Cam000.png"):
        ingest(folder)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_png_is_named(tmp_path: Path, damage: str) -> None:
    folder = write_hci(tmp_path / "scene", make_synthetic_lightfield(2, 2, 32, 32))
    bad = folder / "input_Cam003.png"
    bad.write_bytes(b"not a png" if damage == "garbage" else bad.read_bytes()[:200])
    with raises_naming(str(bad), "cannot read image"):
        ingest(folder)


def test_unknown_format(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with raises_naming("notes", "unknown light field format"):
        ingest(tmp_path / "notes")
    with raises_naming("notes", "unknown format 'png'"):
        ingest(tmp_path / "notes", fmt="png")
    with raises_naming("nowhere", "no such file"):
        ingest(tmp_path / "nowhere")


def test_bad_mat_files_are_named(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "other.mat", {"X": np.zeros((2, 2))})
    with raises_naming("other.mat", "no variable 'LF'", "X"):
        ingest(tmp_path / "other.mat")
    scipy.io.savemat(tmp_path / "flat.mat", {"LF": np.zeros((4, 5, 3), np.uint16)})
    with raises_naming("flat.mat", "5-D"):
        ingest(tmp_path / "flat.mat")
    scipy.io.savemat(tmp_path / "bright.mat", {"LF": np.full((1, 1, 2, 2, 3), 2.0)})
    with raises_naming("bright.mat", "[0, 1]"):
        ingest(tmp_path / "bright.mat")
    with h5py.File(tmp_path / "h5.mat", "w") as f:
        f["other"] = np.zeros(3)
    with raises_naming("h5.mat", "no array variable 'LF'", "other"):
        ingest(tmp_path / "h5.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00" * 300)
    with raises_naming("junk.mat", "cannot read MATLAB file"):
        ingest(tmp_path / "junk.mat")


def test_bad_zarr_inputs_are_named(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "float.zarr", mode="w", zarr_format=3)
    group.create_array("views", shape=(1, 1, 2, 2, 3), dtype="float32")
    with raises_naming("float.zarr", "uint8", "float32"):
        read_lightfield(tmp_path / "float.zarr")
    group = zarr.open_group(tmp_path / "other.zarr", mode="w", zarr_format=3)
    group.create_array("pixels", shape=(1, 1, 2, 2, 3), dtype="uint8")
    with raises_naming("other.zarr", "no 'views' array", "pixels"):
        ingest(tmp_path / "other.zarr")
    zarr.create_array(tmp_path / "array.zarr", shape=(3,), dtype="uint8")
    with raises_naming("array.zarr", "not a zarr group"):
        read_lightfield(tmp_path / "array.zarr")
    (tmp_path / "empty").mkdir()
    with raises_naming("empty", "not a zarr group"):
        read_lightfield(tmp_path / "empty")
    with raises_naming("missing.zarr", "no such file"):
        read_lightfield(tmp_path / "missing.zarr")


def test_transform_larger_than_light_field(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3))
    with raises_naming(str(folder), "views=4x3", "3x3"):
        ingest(folder, views=(4, 3))
    with raises_naming(str(folder), "crop=6x9", "6x8"):
        ingest(folder, crop=(6, 9))
    with raises_naming(str(folder), "positive integers"):
        ingest(folder, size=(0, 4))


# --------------------------------------------------------------------------- atomic output


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial"))


def test_failed_ingest_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3))
    out = tmp_path / "out" / "lf.zarr"

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(zarr.Group, "create_array", fail)  # fails after the group was started
    with pytest.raises(OSError, match="disk full"):
        ingest_to_zarr(folder, out)
    assert not out.exists() and _leftovers(out) == []
    monkeypatch.undo()

    (folder / "input_Cam005.png").write_bytes(b"broken")  # fails while reading
    with raises_naming("input_Cam005.png"):
        ingest_to_zarr(folder, out)
    assert not out.exists() and _leftovers(out) == []


def test_failed_ingest_keeps_previous_output(tmp_path: Path) -> None:
    folder = write_hci(tmp_path / "scene", marked_lightfield(3, 3))
    out = tmp_path / "lf.zarr"
    first = ingest_to_zarr(folder, out)
    with raises_naming("views=5x5"):
        ingest_to_zarr(folder, out, views=(5, 5))
    assert np.array_equal(read_lightfield(out).views, first.views) and _leftovers(out) == []


# --------------------------------------------------------------------------- real data


def test_embedded_cotton128_scene() -> None:
    lf = ingest(REPO / "data" / "cotton128", fmt="hci")
    assert lf.views.shape == (9, 9, 128, 128, 3)
    assert lf.attrs["camera"]["focal_px"] == pytest.approx(1462.857, abs=1e-3)
    assert lf.attrs["camera"]["disparity_range"] == [-1.6, 1.5]
    if COTTON.is_dir():
        for index in (0, 40, 80):
            original = np.asarray(Image.open(COTTON / f"input_Cam{index:03d}.png"))
            assert np.array_equal(lf.views[index // 9, index % 9], original[192:320, 192:320])


@pytest.mark.skipif(not COTTON.is_dir(), reason="shared HCI cotton scene not available")
def test_real_hci_cotton() -> None:
    lf = ingest(COTTON, views=(5, 5), crop=(64, 64))
    assert lf.views.shape == (5, 5, 64, 64, 3)
    assert lf.attrs["format"] == "hci" and lf.attrs["original_grid"] == [9, 9]
    assert lf.attrs["view_offset"] == [2, 2]
    assert lf.attrs["crop"] == {"top": 224, "left": 224, "height": 64, "width": 64}
    camera = lf.attrs["camera"]
    assert camera["focal_px"] == pytest.approx(1462.857, abs=1e-3)
    assert camera["baseline_mm"] == 25.0 and camera["focus_distance_m"] == 4.25
    assert camera["disparity_range"] == [-1.6, 1.5] and camera["frustum_disparity_range"] == [-2.0, 2.0]
    centre = np.asarray(Image.open(COTTON / "input_Cam040.png"))[224:288, 224:288]
    assert np.array_equal(lf.views[2, 2], centre)

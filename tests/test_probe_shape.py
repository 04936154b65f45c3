"""probe_shape: the (U, V, H, W) that ingest would write, from file names and headers only.

Every format is checked against a real ``ingest`` of the same source and arguments, every bad
input against the exact error ``ingest`` raises, and a source whose pixels cannot be read at all
must still be probed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import zarr
from PIL import Image, ImageFile

from lfcomp.errors import LfcompError
from lfcomp.io import lightfield
from lfcomp.io.lightfield import ingest, ingest_to_zarr, probe_shape
from test_lightfield import COTTON_CFG, REPO, marked_lightfield, raises_naming, write_folder, write_hci

GRID, SIZE = (4, 5), (12, 16)


def _views() -> np.ndarray:
    return marked_lightfield(*GRID, *SIZE)


def _hci(tmp: Path) -> Path:
    return write_hci(tmp / "scene", _views())


def _hci_square(tmp: Path) -> Path:
    return write_hci(tmp / "scene", marked_lightfield(5, 5, *SIZE), cfg=False)


def _folder(tmp: Path) -> Path:
    return write_folder(tmp / "views", _views(), "lf_{u:02d}_{v:02d}.png", base=1)


def _mat_v5(tmp: Path) -> Path:
    views = _views()
    weight = np.full(views.shape[:-1] + (1,), 7, np.uint8)
    scipy.io.savemat(tmp / "lf.mat", {"LF": np.concatenate([views, weight], axis=-1).astype(np.uint16) * 257})
    return tmp / "lf.mat"


def _mat_v73(tmp: Path) -> Path:
    with h5py.File(tmp / "lf.mat", "w", userblock_size=512) as f:
        f["LF"] = (_views() / 255.0).transpose()  # MATLAB order: (C, W, H, V, U)
    return tmp / "lf.mat"


def _zarr(tmp: Path) -> Path:
    ingest_to_zarr(_hci(tmp), tmp / "lf.zarr", views=(4, 4), crop=(10, 12))
    return tmp / "lf.zarr"


SOURCES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "hci with parameters.cfg": (_hci, "hci"),
    "hci without parameters.cfg": (_hci_square, "hci"),
    "row/column folder": (_folder, "folder"),
    "mat v5, uint16 with weights": (_mat_v5, "epfl-mat"),
    "mat v7.3, float": (_mat_v73, "epfl-mat"),
    "zarr of an earlier ingest": (_zarr, "zarr"),
}
TRANSFORMS: dict[str, dict[str, tuple[int, int]]] = {
    "none": {},
    "views": {"views": (3, 2)},
    "crop": {"crop": (7, 6)},
    "size": {"size": (5, 9)},
    "views, crop and size": {"views": (2, 3), "crop": (8, 10), "size": (3, 4)},
    "one view, full crop": {"views": (1, 1), "crop": (10, 12)},
}


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("source", SOURCES)
def test_probe_matches_ingest(source: str, transform: str, tmp_path: Path) -> None:
    make, fmt = SOURCES[source]
    src, kwargs = make(tmp_path), TRANSFORMS[transform]
    expected = ingest(src, fmt=fmt, **kwargs).views.shape[:4]
    assert probe_shape(src, fmt=fmt, **kwargs) == expected
    assert probe_shape(str(src), **kwargs) == expected  # auto-detected format, path as str


def test_probe_returns_python_ints(tmp_path: Path) -> None:
    shape = probe_shape(_hci(tmp_path), views=(np.int64(2), np.int64(2)), size=(np.int32(4), np.int32(4)))
    assert shape == (2, 2, 4, 4) and all(type(n) is int for n in shape)


def test_embedded_cotton128_scene() -> None:
    assert probe_shape(REPO / "data" / "cotton128", fmt="hci") == (9, 9, 128, 128)
    assert probe_shape(REPO / "data" / "cotton128", views=(5, 5), crop=(64, 64), size=(32, 32)) == (5, 5, 32, 32)


# --------------------------------------------------------------------------- no pixels read


def test_probe_reads_no_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources: dict[str, tuple[Path, str]] = {}
    for index, (name, (make, fmt)) in enumerate(SOURCES.items()):
        (tmp_path / str(index)).mkdir()
        sources[name] = make(tmp_path / str(index)), fmt
    expected = {name: ingest(src, fmt=fmt).views.shape[:4] for name, (src, fmt) in sources.items()}

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("probe_shape read pixel data")

    monkeypatch.setattr(lightfield, "load_image", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(scipy.io, "loadmat", refuse)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    monkeypatch.setattr(zarr.Array, "__getitem__", refuse)
    for name, (src, fmt) in sources.items():
        assert probe_shape(src, fmt=fmt) == expected[name], name
    with pytest.raises(AssertionError, match="read pixel data"):  # the guards do catch a real read
        ingest(sources["hci with parameters.cfg"][0])


# --------------------------------------------------------------------------- errors, the same as ingest's


def _missing_view(tmp: Path) -> Path:
    folder = _hci(tmp)
    (folder / "input_Cam007.png").unlink()
    return folder


def _duplicate_view(tmp: Path) -> Path:
    folder = _hci(tmp)
    (folder / "input_Cam0007.png").write_bytes((folder / "input_Cam007.png").read_bytes())
    return folder


def _non_square(tmp: Path) -> Path:
    folder = _hci_square(tmp)
    (folder / "input_Cam024.png").unlink()
    return folder


def _outside_cfg_grid(tmp: Path) -> Path:
    folder = _hci(tmp)
    (folder / "parameters.cfg").write_text(COTTON_CFG.format(U=3, V=5, height=SIZE[0], width=SIZE[1]))
    return folder


def _cfg_for_other_width(tmp: Path) -> Path:
    folder = _hci(tmp)
    (folder / "parameters.cfg").write_text(COTTON_CFG.format(U=4, V=5, height=SIZE[0], width=512))
    return folder


def _garbage_first_view(tmp: Path) -> Path:
    folder = _hci(tmp)
    (folder / "input_Cam000.png").write_bytes(b"not a png")
    return folder


def _float_first_view(tmp: Path) -> Path:
    folder = _hci(tmp)
    Image.fromarray(np.zeros(SIZE, np.float32)).save(folder / "input_Cam000.png", format="TIFF")
    return folder


def _folder_missing_position(tmp: Path) -> Path:
    folder = _folder(tmp)
    (folder / "lf_02_03.png").unlink()
    return folder


def _folder_unnamed_view(tmp: Path) -> Path:
    folder = _folder(tmp)
    (folder / "lf_02_03.png").rename(folder / "lf_x.png")
    return folder


def _text_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt"


def _mat_without_lf(tmp: Path) -> Path:
    scipy.io.savemat(tmp / "lf.mat", {"X": np.zeros((2, 2))})
    return tmp / "lf.mat"


def _mat_4d(tmp: Path) -> Path:
    scipy.io.savemat(tmp / "lf.mat", {"LF": np.zeros((3, 3, 4, 4), np.uint8)})
    return tmp / "lf.mat"


def _mat73_huge(tmp: Path) -> Path:
    with h5py.File(tmp / "lf.mat", "w") as mat:  # declared, never written
        mat.create_dataset("LF", shape=(3, 1000, 1000, 20, 20), dtype="f8", chunks=(3, 100, 100, 1, 1))
    return tmp / "lf.mat"


def _mat_zero_bytes(tmp: Path) -> Path:
    (tmp / "lf.mat").write_bytes(b"")
    return tmp / "lf.mat"


def _zarr_without_views(tmp: Path) -> Path:
    zarr.open_group(tmp / "lf.zarr", mode="w", zarr_format=3).create_array("pixels", shape=(1, 1, 2, 2, 3),
                                                                           dtype="uint8")
    return tmp / "lf.zarr"


def _zarr_float(tmp: Path) -> Path:
    zarr.open_group(tmp / "lf.zarr", mode="w", zarr_format=3).create_array("views", shape=(1, 1, 2, 2, 3),
                                                                           dtype="float32")
    return tmp / "lf.zarr"


def _zarr_resized(tmp: Path) -> Path:
    ingest_to_zarr(_hci(tmp), tmp / "lf.zarr", size=(6, 8))
    return tmp / "lf.zarr"


def _zarr_bad_camera(tmp: Path) -> Path:
    group = zarr.open_group(tmp / "lf.zarr", mode="w", zarr_format=3, attributes={"camera": {"focal_px": -5.0}})
    group.create_array("views", shape=(1, 1, 2, 2, 3), dtype="uint8")
    return tmp / "lf.zarr"


def _directory_named_mat(tmp: Path) -> Path:
    (tmp / "lf.mat").mkdir()
    return tmp / "lf.mat"


# source maker, format, ingest arguments, and what the message must name besides the source
BAD: dict[str, tuple[Callable[[Path], Path], str, dict[str, object], str]] = {
    "no such path": (lambda t: t / "nowhere", "auto", {}, "no such file"),
    "hci folder missing": (lambda t: t / "nowhere", "hci", {}, "not a folder"),
    "folder missing": (lambda t: t / "nowhere", "folder", {}, "not a folder"),
    "unknown format name": (_hci, "png", {}, "unknown format 'png'"),
    "unknown layout": (_text_file, "auto", {}, "unknown light field format"),
    "missing hci view": (_missing_view, "auto", {}, "input_Cam007.png"),
    "duplicate hci view": (_duplicate_view, "hci", {}, "duplicate view index 7"),
    "non-square hci grid": (_non_square, "hci", {}, "square grid"),
    "view outside the cfg grid": (_outside_cfg_grid, "hci", {}, "outside the 3x5 grid"),
    "cfg for another width": (_cfg_for_other_width, "hci", {}, "16 px wide"),
    "garbage first view": (_garbage_first_view, "hci", {}, "cannot read image"),
    "float first view": (_float_first_view, "hci", {}, "unsupported image mode F"),
    "folder missing a position": (_folder_missing_position, "folder", {}, "(2, 3)"),
    "folder view without row/column": (_folder_unnamed_view, "folder", {}, "row and column"),
    "mat without LF": (_mat_without_lf, "auto", {}, "no variable 'LF'"),
    "mat not 5-D": (_mat_4d, "epfl-mat", {}, "5-D"),
    "mat v7.3 declaring 9.6 GB": (_mat73_huge, "epfl-mat", {}, "8-byte values"),
    "zero-byte mat": (_mat_zero_bytes, "epfl-mat", {}, "cannot read MATLAB file"),
    "mat that is a folder": (_directory_named_mat, "epfl-mat", {}, "not a file"),
    "zarr without views": (_zarr_without_views, "zarr", {}, "no 'views' array"),
    "zarr of float views": (_zarr_float, "auto", {}, "must be uint8"),
    "zarr with a negative focal length": (_zarr_bad_camera, "zarr", {}, "focal_px"),
    "crop of a resized zarr": (_zarr_resized, "zarr", {"crop": (2, 2)}, "already resized"),
    "views larger than the grid": (_hci, "hci", {"views": (5, 5)}, "views=5x5"),
    "crop larger than the views": (_folder, "folder", {"crop": (12, 17)}, "crop=12x17"),
    "crop larger than a mat's views": (_mat_v5, "epfl-mat", {"crop": (13, 16)}, "crop=13x16"),
    "views of a zarr too many": (_zarr, "zarr", {"views": (4, 5)}, "views=4x5"),
    "size not positive": (_hci, "hci", {"size": (0, 4)}, "positive integers"),
    "views not a pair": (_hci, "hci", {"views": (2, 2, 2)}, "two positive integers"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_the_error_ingest_raises(case: str, tmp_path: Path) -> None:
    make, fmt, kwargs, problem = BAD[case]
    src = make(tmp_path)
    with raises_naming(str(src), problem) as from_ingest:
        ingest(src, fmt=fmt, **kwargs)
    with raises_naming(str(src), problem) as from_probe:
        probe_shape(src, fmt=fmt, **kwargs)
    assert str(from_probe.value) == str(from_ingest.value)
    assert "\n" not in str(from_probe.value)


def test_crop_after_resize_in_one_call_is_allowed(tmp_path: Path) -> None:
    """Within one call crop comes before size (ingest's order), so both together are fine."""
    src = _hci(tmp_path)
    assert probe_shape(src, crop=(8, 8), size=(4, 4)) == (4, 5, 4, 4)


def test_error_type_is_lfcomperror(tmp_path: Path) -> None:
    with pytest.raises(LfcompError) as info:
        probe_shape(tmp_path / "nowhere")
    assert info.value.where == str(tmp_path / "nowhere")

"""Light field I/O: read the supported input formats, crop/resize them, and store them as zarr.

This is stage 1 ("ingest") of the codec. A light field is a uint8 array ``views`` of shape
(U, V, H, W, 3): U is the view row (top to bottom), V the view column (left to right).
Every later stage reads the zarr written here, so everything about where the views came from
and how they were transformed is recorded in its (JSON) attributes.

Every input is untrusted: a damaged, foreign or inconsistent file is a one-line ``LfcompError``
naming it, checked before anything large is allocated (a light field holds at most
``MAX_LIGHTFIELD_BYTES`` of 8-bit RGB).
"""

from __future__ import annotations

import configparser
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from PIL import Image

from lfcomp import __version__
from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError

FORMATS = ("auto", "hci", "folder", "epfl-mat", "zarr")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")
_HCI_NAME = re.compile(r"^input_Cam(\d+)\.png$")
_INTEGER = re.compile(r"\d+")
MAX_LIGHTFIELD_BYTES = 1 << 32  # U·V·H·W·3 of the 8-bit views; 4 GiB, over 4× a 17×17×1024² Lytro scene


@dataclass
class LightField:
    """A light field: ``views`` (U, V, H, W, 3) uint8 and JSON-serialisable ``attrs``."""

    views: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> tuple[int, int]:
        """(U, V): number of view rows and view columns."""
        return int(self.views.shape[0]), int(self.views.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W): height and width of one view in pixels."""
        return int(self.views.shape[2]), int(self.views.shape[3])


def view_grid_positions(U: int, V: int) -> np.ndarray:
    """(U, V, 2) float array of (s, t) = (col - (V-1)/2, row - (U-1)/2), in view steps.

    s is the horizontal and t the vertical offset of each view from the centre of the grid.
    """
    t, s = np.meshgrid(np.arange(U) - (U - 1) / 2, np.arange(V) - (V - 1) / 2, indexing="ij")
    return np.stack([s, t], axis=-1)


def _reason(exc: BaseException) -> str:
    """An exception as one line (library messages may span several), for LfcompError."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _check_shape(where: str | Path, shape: tuple[int, ...], what: str = "views") -> None:
    """A light field's (U, V, H, W, 3) must be non-empty and within ``MAX_LIGHTFIELD_BYTES``."""
    if any(n < 1 for n in shape):
        raise LfcompError(where, f"{what} are empty (shape {tuple(shape)})")
    if math.prod(shape[:4]) * 3 > MAX_LIGHTFIELD_BYTES:
        raise LfcompError(where, f"{what} of shape {tuple(shape)} would take more than "
                                 f"{MAX_LIGHTFIELD_BYTES >> 30} GiB as 8-bit RGB")


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _check_camera(where: str | Path, camera: Any) -> None:
    """Camera metadata (``attrs["camera"]``) must hold finite numbers; focal_px > 0, ranges low ≤ high."""
    if not isinstance(camera, dict):
        raise LfcompError(where, f"camera metadata is a {type(camera).__name__}, not an object")
    for key, value in camera.items():
        if key in ("disparity_range", "frustum_disparity_range"):
            if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
                    and value[0] <= value[1]):
                raise LfcompError(where, f"camera {key} = {str(value)[:40]} is not a pair of finite numbers low ≤ high")
        elif key in ("focal_px", "baseline_mm", "focus_distance_m"):
            if not _is_number(value) or (key == "focal_px" and value <= 0):
                raise LfcompError(where, f"camera {key} = {str(value)[:40]} is not a finite "
                                         f"{'positive ' if key == 'focal_px' else ''}number")


def _check_attrs(where: str | Path, attrs: dict[str, Any]) -> None:
    """The attributes later stages read: ``camera`` (train) and ``spec`` (evaluate)."""
    if "camera" in attrs:
        _check_camera(where, attrs["camera"])
    if "spec" in attrs and not (isinstance(attrs["spec"], dict) and isinstance(attrs["spec"].get("kind", ""), str)):
        raise LfcompError(where, f"attribute 'spec' is malformed ({str(attrs['spec'])[:40]})")


# --------------------------------------------------------------------------- zarr storage


def write_lightfield(lf: LightField, path: str | Path) -> None:
    """Write ``lf`` as a zarr v3 group: array ``views`` (one chunk per view) and group attrs.

    The group appears at ``path`` only once it is complete (see ``atomic_output``).
    """
    views = lf.views
    if views.dtype != np.uint8 or views.ndim != 5 or views.shape[-1] != 3:
        raise LfcompError(path, f"views must be uint8 (U, V, H, W, 3), got {views.dtype} {views.shape}")
    try:
        attrs = json.loads(json.dumps(lf.attrs))
    except (TypeError, ValueError) as exc:
        raise LfcompError(path, f"light field attributes are not JSON-serialisable ({_reason(exc)})") from exc
    U, V, H, W, _ = views.shape
    with atomic_output(path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=attrs)
        array = group.create_array("views", shape=views.shape, chunks=(1, 1, H, W, 3), dtype="uint8")
        array[...] = views


def read_lightfield(path: str | Path) -> LightField:
    """Read a light field zarr written by ``write_lightfield``, checking its layout and attributes.

    A missing, foreign or damaged group, array or chunk, a wrong dtype or shape, an empty or
    oversized (``MAX_LIGHTFIELD_BYTES``) light field and malformed ``camera``/``spec`` attributes
    are one-line errors naming ``path``. (A chunk file that is missing altogether reads as zeros:
    zarr does not store chunks that equal the fill value, so it cannot be told from a black view.)
    """
    array, attrs = _open_views(path)
    try:
        views = np.asarray(array[...])
    except Exception as exc:  # codecs raise many types (RuntimeError, ValueError, ...) for damaged chunks
        raise LfcompError(path, f"cannot read 'views', a chunk is damaged ({_reason(exc)})") from exc
    return LightField(views, attrs)


def _open_views(path: str | Path) -> tuple[zarr.Array, dict[str, Any]]:
    """The (lazy, unread) ``views`` array and the attributes of a light field zarr, with every check
    ``read_lightfield`` makes before reading pixels; so a shape can be probed without the data."""
    if not Path(path).exists():
        raise LfcompError(path, "no such file or directory")
    try:
        group = zarr.open_group(path, mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:  # zarr raises many types for foreign or damaged metadata
        raise LfcompError(path, f"not a zarr group ({_reason(exc)})") from exc
    try:
        names = sorted(group.keys())
        array = group["views"] if "views" in names else None
    except Exception as exc:
        raise LfcompError(path, f"cannot open the 'views' array ({_reason(exc)})") from exc
    if array is None:
        raise LfcompError(path, f"zarr group has no 'views' array (found: {names or 'nothing'})")
    if not isinstance(array, zarr.Array):
        raise LfcompError(path, "'views' is a zarr group, expected an array")
    if array.dtype != np.uint8 or array.ndim != 5 or array.shape[-1] != 3:
        raise LfcompError(path, f"'views' must be uint8 with shape (U, V, H, W, 3), got {array.dtype} {array.shape}")
    _check_shape(path, array.shape, "'views'")
    _check_attrs(path, attrs)
    return array, attrs


# --------------------------------------------------------------------------- images


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit values to 8-bit as round(x / 257), in integers (x/257 is never exactly .5)."""
    return ((values.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def _check_opaque(path: Path, alpha: np.ndarray, opaque: int) -> None:
    """Views are coded as RGB: a view with any pixel less than fully opaque is refused, not flattened."""
    transparent = int(np.count_nonzero(alpha < opaque))
    if transparent:
        raise LfcompError(path, f"view has {transparent} transparent pixel(s) (alpha below fully opaque); "
                                f"lfcomp codes RGB only, so flatten the views onto a background first")


_UNSUPPORTED_MODES = ("I", "F")


def _refuse_mode(path: Path, mode: str) -> None:
    """32-bit integer and float images have no defined 8-bit scale: an error, not a guess."""
    raise LfcompError(path, f"unsupported image mode {mode} (use 8- or 16-bit images)")


def load_image(path: Path) -> np.ndarray:
    """Read one view as uint8 RGB (H, W, 3): 8- and 16-bit, grey, palette, RGB and RGBA.

    16-bit values become round(x / 257). An alpha channel (or a palette's transparency) is accepted
    only when every pixel is fully opaque, and then dropped; a view with transparent pixels is an
    ``LfcompError`` (dropping alpha would silently show whatever colour the transparent pixels hold).
    Exception: 16-bit gray+alpha PNGs (rare) keep Pillow's high byte (x >> 8), which may differ by 1,
    and count as opaque when that byte is 255. Damaged, truncated or foreign files are ``LfcompError``.
    """
    try:
        with Image.open(path) as image:
            rawmode = image.tile[0].args if image.tile else None
            if image.format == "PNG" and rawmode in ("RGB;16B", "RGBA;16B"):
                # Pillow keeps only the high byte of 16-bit colour PNGs. Decoding the same data
                # again with the little-endian raw mode yields the low bytes, so the full value
                # is recovered without another PNG library.
                high = np.asarray(image, dtype=np.uint16)
                with Image.open(path) as again:
                    again.tile = [tile._replace(args=rawmode.replace(";16B", ";16L")) for tile in again.tile]
                    low = np.asarray(again, dtype=np.uint16)
                full = high * 256 + low
                if full.shape[-1] == 4:
                    _check_opaque(path, full[..., 3], 65535)
                pixels = _to_uint8(full)[..., :3]
            elif image.mode.startswith("I;16"):
                pixels = np.repeat(_to_uint8(np.asarray(image))[..., None], 3, axis=-1)
            elif image.mode in _UNSUPPORTED_MODES:
                _refuse_mode(path, image.mode)
            elif "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
                rgba = np.asarray(image.convert("RGBA"))
                _check_opaque(path, rgba[..., 3], 255)
                pixels = rgba[..., :3]
            else:
                pixels = np.asarray(image.convert("RGB"))
    except LfcompError:
        raise
    except Exception as exc:  # Pillow raises many types for damaged or foreign files
        raise LfcompError(path, f"cannot read image ({_reason(exc)})") from exc
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise LfcompError(path, f"cannot read image (decoded to {pixels.dtype} {pixels.shape}, expected 8-bit RGB)")
    return np.ascontiguousarray(pixels)


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of one view from its header, without decoding the pixels; files that ``load_image``
    refuses from their header alone (foreign, damaged header, unsupported mode) are refused alike."""
    try:
        with Image.open(path) as image:
            if image.mode in _UNSUPPORTED_MODES:
                _refuse_mode(path, image.mode)
            width, height = image.size
    except LfcompError:
        raise
    except Exception as exc:  # Pillow raises many types for damaged or foreign files
        raise LfcompError(path, f"cannot read image ({_reason(exc)})") from exc
    return height, width


def _grid_shape(files: list[list[Path]], size: tuple[int, int]) -> tuple[int, int, int, int, int]:
    """(U, V, H, W, 3) of a grid of views of ``size`` (H, W); empty or oversized is an error."""
    shape = (len(files), len(files[0]), size[0], size[1], 3)
    _check_shape(files[0][0].parent, shape)
    return shape


def _load_grid(files: list[list[Path]]) -> np.ndarray:
    """Load a full (U, V) grid of image files into one (U, V, H, W, 3) array; sizes must agree."""
    first = load_image(files[0][0])
    views = np.empty(_grid_shape(files, first.shape[:2]), dtype=np.uint8)
    for u, row in enumerate(files):
        for v, path in enumerate(row):
            image = first if (u, v) == (0, 0) else load_image(path)
            if image.shape != first.shape:
                raise LfcompError(path, f"view is {image.shape[0]}x{image.shape[1]} (HxW) but "
                                        f"{files[0][0].name} is {first.shape[0]}x{first.shape[1]}")
            views[u, v] = image
    return views


# --------------------------------------------------------------------------- formats


def _read_hci_parameters(cfg_path: Path) -> configparser.ConfigParser:
    """Parse an HCI parameters.cfg (INI)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise LfcompError(cfg_path, f"cannot parse ({_reason(exc)})") from exc
    return parser


def _cfg_number(parser: configparser.ConfigParser, cfg_path: Path, section: str, key: str) -> float | None:
    """A number from parameters.cfg, or None when absent."""
    if not parser.has_option(section, key):
        return None
    text = parser.get(section, key)
    try:
        return float(text)
    except ValueError as exc:
        raise LfcompError(cfg_path, f"[{section}] {key} = {text!r} is not a number") from exc


def _hci_camera(parser: configparser.ConfigParser, cfg_path: Path, width: int) -> dict[str, Any]:
    """Camera metadata from an HCI parameters.cfg, in pixels of views ``width`` pixels wide."""
    def number(section: str, key: str) -> float | None:
        return _cfg_number(parser, cfg_path, section, key)

    camera: dict[str, Any] = {}
    focal_mm, sensor_mm = number("intrinsics", "focal_length_mm"), number("intrinsics", "sensor_size_mm")
    resolution_x = number("intrinsics", "image_resolution_x_px")
    if resolution_x is not None and resolution_x != width:
        raise LfcompError(cfg_path, f"image_resolution_x_px = {resolution_x:g} but the views are {width} px wide")
    if focal_mm is not None and sensor_mm and resolution_x:
        camera["focal_px"] = focal_mm / sensor_mm * resolution_x
    for key, section in (("baseline_mm", "extrinsics"), ("focus_distance_m", "extrinsics")):
        value = number(section, key)
        if value is not None:
            camera[key] = value
    for name, prefix in (("disparity_range", "disp"), ("frustum_disparity_range", "frustum_disp")):
        low, high = number("meta", f"{prefix}_min"), number("meta", f"{prefix}_max")
        if low is not None and high is not None:
            camera[name] = [low, high]
    _check_camera(cfg_path, camera)
    return camera


def _hci_grid(folder: Path) -> tuple[list[list[Path]], configparser.ConfigParser | None]:
    """The (U, V) grid of view files of an HCI benchmark folder (input_CamNNN.png, index = row * V + col)
    and its parsed parameters.cfg (None when absent); a missing, duplicate or stray view is an error."""
    if not folder.is_dir():
        raise LfcompError(folder, "not a folder (the hci format is a folder of input_CamNNN.png)")
    by_index: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        match = _HCI_NAME.match(path.name)
        if match is None:
            continue
        index = int(match.group(1))
        if index in by_index:
            raise LfcompError(folder, f"duplicate view index {index}: {by_index[index].name} and {path.name}")
        by_index[index] = path
    if not by_index:
        raise LfcompError(folder, "no input_CamNNN.png views found")
    cfg_path = folder / "parameters.cfg"
    parser = _read_hci_parameters(cfg_path) if cfg_path.exists() else None
    cams_x = _cfg_number(parser, cfg_path, "extrinsics", "num_cams_x") if parser else None
    cams_y = _cfg_number(parser, cfg_path, "extrinsics", "num_cams_y") if parser else None
    if cams_x and cams_y:
        U, V = int(cams_y), int(cams_x)
        outside = sorted(i for i in by_index if i >= U * V)
        if outside:
            raise LfcompError(by_index[outside[0]],
                              f"view index {outside[0]} is outside the {U}x{V} grid of {cfg_path.name}")
    else:
        count = max(by_index) + 1
        U = V = math.isqrt(count)
        if U * U != count:
            raise LfcompError(folder, f"views input_Cam000..input_Cam{count - 1:03d} do not form a square grid "
                                      f"({count} views; give num_cams_x/num_cams_y in parameters.cfg)")
    missing = [i for i in range(U * V) if i not in by_index]
    if missing:
        names = ", ".join(f"input_Cam{i:03d}.png" for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise LfcompError(folder, f"{len(missing)} of {U * V} views of the {U}x{V} grid missing: {names}")
    return [[by_index[u * V + v] for v in range(V)] for u in range(U)], parser


def _read_hci(folder: Path) -> tuple[np.ndarray, dict[str, Any] | None]:
    """HCI benchmark folder: views and, from an optional parameters.cfg, camera metadata."""
    files, parser = _hci_grid(folder)
    views = _load_grid(files)
    camera = _hci_camera(parser, folder / "parameters.cfg", views.shape[3]) if parser else None
    return views, camera


def _row_col(path: Path) -> tuple[int, int] | None:
    """(row, col) from the last two integers of a file name's stem, or None."""
    numbers = _INTEGER.findall(path.stem)
    return (int(numbers[-2]), int(numbers[-1])) if len(numbers) >= 2 else None


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _folder_grid(folder: Path) -> list[list[Path]]:
    """The (U, V) grid of view files of a folder of views named ``..._ROW_COL.ext`` (0- or 1-based
    row/column numbers); an unnamed, duplicate or missing position is an error."""
    if not folder.is_dir():
        raise LfcompError(folder, "not a folder (the folder format is a folder of row/column-named views)")
    files = _image_files(folder)
    if not files:
        raise LfcompError(folder, f"no view images found ({', '.join(IMAGE_SUFFIXES)})")
    by_position: dict[tuple[int, int], Path] = {}
    for path in files:
        position = _row_col(path)
        if position is None:
            raise LfcompError(path, "cannot read the view row and column from the file name "
                                    "(expected two integers, e.g. view_03_07.png)")
        if position in by_position:
            raise LfcompError(folder, f"two views at row {position[0]}, column {position[1]}: "
                                      f"{by_position[position].name} and {path.name}")
        by_position[position] = path
    base = 1 if min(r for r, _ in by_position) == 1 and min(c for _, c in by_position) == 1 else 0
    U = max(r for r, _ in by_position) + 1 - base
    V = max(c for _, c in by_position) + 1 - base
    missing = [(u + base, v + base) for u in range(U) for v in range(V) if (u + base, v + base) not in by_position]
    if missing:
        listed = ", ".join(f"({r}, {c})" for r, c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise LfcompError(folder, f"{len(missing)} of {U * V} views of the {U}x{V} grid missing "
                                  f"at (row, column) {listed}")
    return [[by_position[(u + base, v + base)] for v in range(V)] for u in range(U)]


def _read_folder(folder: Path) -> np.ndarray:
    """Folder of views named ``..._ROW_COL.ext``; 0- or 1-based row/column numbers."""
    return _load_grid(_folder_grid(folder))


_MAT_ITEMSIZE = {"uint8": 1, "int8": 1, "logical": 1, "uint16": 2, "int16": 2, "single": 4}  # others: ≤ 8 bytes


def _check_mat_shape(path: Path, shape: tuple[int, ...], itemsize: int) -> None:
    """``LF`` must be (U, V, H, W, 3 or 4), non-empty and, as stored and as 8-bit views, within
    ``MAX_LIGHTFIELD_BYTES``; checked from the file's header, before the data is read."""
    if len(shape) != 5 or shape[-1] not in (3, 4):
        raise LfcompError(path, f"'LF' must be 5-D (U, V, H, W, 3 or 4), got shape {tuple(shape)}")
    _check_shape(path, tuple(shape[:4]) + (3,), "'LF' views")
    if math.prod(shape) * itemsize > MAX_LIGHTFIELD_BYTES:
        raise LfcompError(path, f"'LF' of shape {tuple(shape)} with {itemsize}-byte values would take more than "
                                f"{MAX_LIGHTFIELD_BYTES >> 30} GiB to read")


def _mat_lf_shape(path: Path) -> tuple[int, ...]:
    """Declared shape (U, V, H, W, C) of the variable ``LF`` of a MATLAB file, v7.3 (HDF5) or older,
    from its header alone and checked by ``_check_mat_shape`` (a crafted header cannot make a reader
    allocate)."""
    import h5py
    import scipy.io

    if not path.is_file():
        raise LfcompError(path, "not a file (the epfl-mat format is a .mat file)")
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as mat:
                if "LF" not in mat or not isinstance(mat["LF"], h5py.Dataset):
                    raise LfcompError(path, f"no array variable 'LF' (found: {', '.join(sorted(mat.keys())) or 'none'})")
                shape, itemsize = tuple(mat["LF"].shape[::-1]), mat["LF"].dtype.itemsize  # stored reversed
        else:
            declared = {name: (shape, kind) for name, shape, kind in scipy.io.whosmat(path)}
            if "LF" not in declared:
                raise LfcompError(path, f"no variable 'LF' (found: {', '.join(declared) or 'none'})")
            shape, itemsize = tuple(declared["LF"][0]), _MAT_ITEMSIZE.get(declared["LF"][1], 8)
        _check_mat_shape(path, shape, itemsize)
    except LfcompError:
        raise
    except Exception as exc:  # scipy/h5py raise many types for damaged or foreign files
        raise LfcompError(path, f"cannot read MATLAB file ({_reason(exc)})") from exc
    return shape


def _load_mat_variable(path: Path) -> np.ndarray:
    """The variable ``LF`` of a MATLAB file, as (U, V, H, W, C); v7.3 (HDF5) or older.

    The declared shape is checked (``_mat_lf_shape``) before the data is read."""
    import h5py
    import scipy.io

    _mat_lf_shape(path)
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as mat:
                return np.asarray(mat["LF"][()]).transpose()
        contents = scipy.io.loadmat(path, variable_names=["LF"])
    except Exception as exc:  # scipy/h5py raise many types for damaged or foreign files
        raise LfcompError(path, f"cannot read MATLAB file ({_reason(exc)})") from exc
    if "LF" not in contents:
        raise LfcompError(path, "no variable 'LF'")
    return contents["LF"]


def _read_epfl_mat(path: Path) -> np.ndarray:
    """EPFL Lytro decoded light field: ``LF`` (U, V, H, W, 3 or 4), uint8, uint16 or float in [0, 1]
    (NaN or Inf is an error, not clipped)."""
    data = _load_mat_variable(path)
    if data.ndim != 5 or data.shape[-1] not in (3, 4):
        raise LfcompError(path, f"'LF' must be 5-D (U, V, H, W, 3 or 4), got shape {data.shape}")
    data = data[..., :3]  # the 4th channel is the decoder's weight map, not colour
    if data.dtype == np.uint8:
        return np.ascontiguousarray(data)
    if data.dtype == np.uint16:
        return np.stack([_to_uint8(row) for row in data])  # one view row at a time bounds memory
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all():
            raise LfcompError(path, f"'LF' has {int(finite.size - np.count_nonzero(finite))} non-finite "
                                    f"values (NaN or Inf)")
        if not np.all((data >= 0) & (data <= 1)):
            raise LfcompError(path, "'LF' is float but not within [0, 1]")
        return np.stack([np.round(row * 255).astype(np.uint8) for row in data])
    raise LfcompError(path, f"'LF' has unsupported type {data.dtype} (expected uint8, uint16 or float)")


def detect_format(src: str | Path) -> str:
    """Name of the format of ``src`` (one of FORMATS other than 'auto'), judged from the path."""
    path = Path(src)
    if not path.exists():
        raise LfcompError(path, "no such file or directory")
    if path.is_file():
        if path.suffix.lower() == ".mat":
            return "epfl-mat"
    elif (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
        return "zarr"
    elif any(_HCI_NAME.match(p.name) for p in path.iterdir()):
        return "hci"
    else:
        files = _image_files(path)
        if files and all(_row_col(p) is not None for p in files):
            return "folder"
    raise LfcompError(path, "unknown light field format (expected an HCI folder of input_CamNNN.png, "
                            "a folder of row/column-named views, an EPFL .mat file or a light field zarr)")


# --------------------------------------------------------------------------- ingest


def _source_attrs(path: Path, fmt: str, views: np.ndarray) -> dict[str, Any]:
    """Attributes of a light field as read, before any transform."""
    return {
        "source": str(path.resolve()),
        "format": fmt,
        "original_grid": [int(views.shape[0]), int(views.shape[1])],
        "original_size": [int(views.shape[2]), int(views.shape[3])],
        "view_offset": [0, 0],
        "crop": None,
        "resize": None,
    }


def _resolve_format(path: Path, fmt: str) -> str:
    """``fmt``, or for 'auto' the format detected from ``path``; an unknown name is an error."""
    if fmt == "auto":
        return detect_format(path)
    if fmt not in FORMATS:
        raise LfcompError(path, f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return fmt


def _read_source(path: Path, fmt: str) -> LightField:
    """Read ``path`` in format ``fmt`` with attributes describing it as the original."""
    fmt = _resolve_format(path, fmt)
    if fmt == "hci":
        views, camera = _read_hci(path)
        attrs = _source_attrs(path, fmt, views)
        if camera is not None:
            attrs["camera"] = camera
        return LightField(views, attrs)
    if fmt == "folder":
        views = _read_folder(path)
        return LightField(views, _source_attrs(path, fmt, views))
    if fmt == "epfl-mat":
        views = _read_epfl_mat(path)
        return LightField(views, _source_attrs(path, fmt, views))
    lf = read_lightfield(path)
    return LightField(lf.views, {**_source_attrs(path, fmt, lf.views), **lf.attrs})


def _check_pair(where: Path, name: str, pair: tuple[int, int], limit: tuple[int, int] | None = None) -> None:
    """``pair`` must be two positive integers, each at most ``limit`` (when given)."""
    if len(pair) != 2 or any(not isinstance(n, (int, np.integer)) or n < 1 for n in pair):
        raise LfcompError(where, f"{name} must be two positive integers, got {pair}")
    if limit is not None and (pair[0] > limit[0] or pair[1] > limit[1]):
        raise LfcompError(where, f"{name}={pair[0]}x{pair[1]} is larger than the light field's {limit[0]}x{limit[1]}")


def _views_offset(grid: tuple[int, int], views: tuple[int, int], where: Path) -> tuple[int, int]:
    """(u0, v0) of the central views[0] x views[1] views of a (U, V) grid; they must fit in it."""
    _check_pair(where, "views", views, grid)
    return (grid[0] - views[0]) // 2, (grid[1] - views[1]) // 2


def _select_views(lf: LightField, views: tuple[int, int], where: Path) -> LightField:
    """Keep the central views[0] x views[1] views."""
    u0, v0 = _views_offset(lf.grid, views, where)
    offset = lf.attrs["view_offset"]
    attrs = {**lf.attrs, "view_offset": [offset[0] + u0, offset[1] + v0]}
    return LightField(lf.views[u0:u0 + views[0], v0:v0 + views[1]], attrs)


def _crop_offset(size: tuple[int, int], crop: tuple[int, int], resized: bool, where: Path) -> tuple[int, int]:
    """(top, left) of the central crop[0] x crop[1] pixels of (H, W) views; the crop must fit, and
    a resized light field is not cropped (its pixels no longer map to the original's)."""
    _check_pair(where, "crop", crop, size)
    if resized:
        raise LfcompError(where, "cannot crop a light field that was already resized; crop the original instead")
    return (size[0] - crop[0]) // 2, (size[1] - crop[1]) // 2


def _crop(lf: LightField, crop: tuple[int, int], where: Path) -> LightField:
    """Keep the central crop[0] x crop[1] pixels of every view (camera intrinsics in px unchanged)."""
    top, left = _crop_offset(lf.size, crop, lf.attrs["resize"] is not None, where)
    previous = lf.attrs["crop"] or {"top": 0, "left": 0}
    region = {"top": previous["top"] + top, "left": previous["left"] + left, "height": crop[0], "width": crop[1]}
    views = lf.views[:, :, top:top + crop[0], left:left + crop[1]]
    return LightField(views, {**lf.attrs, "crop": region})


def _resize(lf: LightField, size: tuple[int, int], where: Path) -> LightField:
    """Resize every view to size (h, w) by area averaging; pixel-unit camera values scale by w/W."""
    _check_pair(where, "size", size)
    h, w = size
    U, V = lf.grid
    views = np.empty((U, V, h, w, 3), dtype=np.uint8)
    for u in range(U):
        for v in range(V):
            for c in range(3):  # in float, so that the area average is rounded once, not per pass
                channel = Image.fromarray(lf.views[u, v, :, :, c].astype(np.float32))
                views[u, v, :, :, c] = np.clip(np.round(np.asarray(channel.resize((w, h), Image.BOX))), 0, 255)
    scale = w / lf.size[1]
    previous = lf.attrs["resize"]
    attrs = {**lf.attrs, "resize": {"from": previous["from"] if previous else list(lf.size), "to": [h, w]}}
    if "camera" in attrs:
        camera = dict(attrs["camera"])
        if "focal_px" in camera:
            camera["focal_px"] *= scale
        for key in ("disparity_range", "frustum_disparity_range"):
            if key in camera:
                camera[key] = [value * scale for value in camera[key]]
        attrs["camera"] = camera
    return LightField(views, attrs)


def ingest(src: str | Path, fmt: str = "auto", views: tuple[int, int] | None = None,
           crop: tuple[int, int] | None = None, size: tuple[int, int] | None = None) -> LightField:
    """Read a light field in any supported format and apply, in order: views, crop, size.

    ``views=(u, v)`` keeps the central u x v views, ``crop=(h, w)`` the central h x w pixels,
    ``size=(h, w)`` resizes each view by area averaging. The attributes record the source and
    every transform so that later stages (and people) can trace the pixels back, the scene's
    trivial floors (``lfcomp.evaluation.floors``) and its disparity range per angular axis estimated
    from the views (``lfcomp.io.calibration``; the camera starts from it without ``parameters.cfg``).
    """
    path = Path(src)
    lf = _read_source(path, fmt)
    if views is not None:
        lf = _select_views(lf, tuple(views), path)
    if crop is not None:
        lf = _crop(lf, tuple(crop), path)
    if size is not None:
        lf = _resize(lf, tuple(size), path)
    from lfcomp.evaluation.floors import trivial_floors
    from lfcomp.io.calibration import estimate_disparity_ranges

    lf.attrs["lfcomp_version"] = __version__
    lf.attrs["floors"] = trivial_floors(lf.views)  # what every model of this scene must beat
    lf.attrs["calibration"] = estimate_disparity_ranges(lf.views)  # disparity per view step, from the views
    return LightField(np.ascontiguousarray(lf.views), lf.attrs)


def _source_shape(path: Path, fmt: str) -> tuple[tuple[int, int, int, int], bool]:
    """(U, V, H, W) of ``path`` as ``_read_source`` reads it, and whether it was already resized;
    from file names and headers only (the first view's, an HCI parameters.cfg, .mat or zarr metadata)."""
    fmt = _resolve_format(path, fmt)
    if fmt == "hci":
        files, parser = _hci_grid(path)
        U, V, H, W, _ = _grid_shape(files, _image_size(files[0][0]))
        if parser:
            _hci_camera(parser, path / "parameters.cfg", W)
        return (U, V, H, W), False
    if fmt == "folder":
        files = _folder_grid(path)
        U, V, H, W, _ = _grid_shape(files, _image_size(files[0][0]))
        return (U, V, H, W), False
    if fmt == "epfl-mat":
        U, V, H, W, _ = _mat_lf_shape(path)
        return (U, V, H, W), False
    array, attrs = _open_views(path)
    U, V, H, W, _ = (int(n) for n in array.shape)
    return (U, V, H, W), attrs.get("resize") is not None


def probe_shape(src: str | Path, fmt: str = "auto", views: tuple[int, int] | None = None,
                crop: tuple[int, int] | None = None, size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """(U, V, H, W) of what ``ingest`` with these arguments writes, from file names and headers only.

    For planning (a workflow's job graph) without decoding a light field: the same one-line errors as
    ``ingest`` for a missing or malformed layout and for views/crop/size that do not fit. Problems only
    the data shows (damaged or transparent image data, views of differing sizes, a .mat's value type
    or NaN, a damaged zarr chunk) are left to ``ingest``.
    """
    path = Path(src)
    (U, V, H, W), resized = _source_shape(path, fmt)
    if views is not None:
        _views_offset((U, V), tuple(views), path)
        U, V = views
    if crop is not None:
        _crop_offset((H, W), tuple(crop), resized, path)
        H, W = crop
    if size is not None:
        _check_pair(path, "size", tuple(size))
        H, W = size
    return int(U), int(V), int(H), int(W)


def ingest_to_zarr(src: str | Path, out: str | Path, fmt: str = "auto", views: tuple[int, int] | None = None,
                   crop: tuple[int, int] | None = None, size: tuple[int, int] | None = None) -> LightField:
    """``ingest`` then ``write_lightfield`` to ``out`` (atomically: no partial output on failure)."""
    lf = ingest(src, fmt=fmt, views=views, crop=crop, size=size)
    write_lightfield(lf, out)
    return lf

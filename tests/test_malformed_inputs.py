"""Hostile input to ingest and to every stage: each malformed file is ONE line, ``lfcomp: error:
<file>: <problem>``, exit status 2, no traceback, no hang, no large allocation and no output left
behind. Resume states are the exception by design: an unusable one is ignored with a warning and
the stage starts over. Usable inputs (16-bit, grey, opaque RGBA views) are still accepted.

Everything runs in-process on a 3×3 light field of 16×16 views and the ``smoke`` preset with a
few steps per stage (the chain below takes a few seconds).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io
import torch
import zarr
from PIL import Image

from conftest import make_synthetic_lightfield
from lfcomp.cli import main
from lfcomp.cli.main import command_table
from lfcomp.cli.options import CONFIG, DEVICE
from lfcomp.engine import resume as resume_state
from lfcomp.io.lightfield import LightField, write_lightfield
from test_lightfield import write_png16

FEW_STEPS = ["--set", "train.steps=4", "--set", "train.eval_views=1", "--set", "train.resume_every=2",
             "--set", "lowrank.steps=4", "--set", "lowrank.z_update_every=2", "--set", "distill.steps=4",
             "--set", "quantize.steps_per_layer=1", "--set", "quantize.codebook_steps=1",
             "--set", "latent.steps=4", "--set", "latent.warm_steps=4"]
COMMANDS = command_table()
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) ")


def argv(*args: Any) -> list[str]:
    """A command line with the smoke settings its command takes (each takes only the options it uses)."""
    groups = COMMANDS[str(args[0])].groups
    return ([str(a) for a in args] + (["--preset", "smoke", *FEW_STEPS] if CONFIG in groups else [])
            + (["--threads", "1", "--device", "cpu"] if DEVICE in groups else []))


def one_line_error(capsys: pytest.CaptureFixture[str], args: list[str], names: Path | str) -> str:
    """Run ``lfcomp args``: exit 2, and stderr is log lines plus ONE error line, which names ``names``."""
    capsys.readouterr()
    status = main(args)
    err = capsys.readouterr().err
    other = [line for line in err.strip().splitlines() if not LOG_LINE.match(line)]
    assert status == 2, err
    assert len(other) == 1 and other[0].startswith("lfcomp: error: "), err
    assert "Traceback" not in err
    assert other[0].startswith(f"lfcomp: error: {names}: ") or f" {names}" in other[0], other[0]
    return other[0]


# --------------------------------------------------------------------------- the artifacts of one run


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every stage's artifact for a tiny scene, plus a second light field of another size."""
    d = tmp_path_factory.mktemp("chain")
    p = {k: d / v for k, v in dict(lf="lf.zarr", other_lf="other.zarr", nerf="nerf.pt", lr="lr.pt",
                                    cores="cores.zarr", dlr="dlr.pt", q="q.pt", latent="latent.pt").items()}
    write_lightfield(LightField(make_synthetic_lightfield(3, 3, 16, 16)), p["lf"])
    write_lightfield(LightField(make_synthetic_lightfield(3, 3, 24, 24, seed=1)), p["other_lf"])
    assert main(argv("train", p["lf"], p["nerf"])) == 0
    assert main(argv("lowrank", p["nerf"], p["lf"], p["lr"], "--rank", 4)) == 0
    assert main(argv("decompose", p["lr"], p["cores"])) == 0
    assert main(argv("distill", p["cores"], p["lf"], p["dlr"])) == 0
    assert main(argv("quantize", p["dlr"], p["lf"], p["q"], "--centroids", 8)) == 0
    assert main(argv("latent-fit", p["lf"], p["latent"], "--lmbda", 0.01)) == 0
    return p


# --------------------------------------------------------------------------- ingest: views, .mat, zarr


def _hci(folder: Path, views: np.ndarray | None = None) -> Path:
    views = make_synthetic_lightfield(3, 3, 16, 16) if views is None else views
    folder.mkdir(parents=True)
    for u in range(views.shape[0]):
        for v in range(views.shape[1]):
            Image.fromarray(views[u, v]).save(folder / f"input_Cam{u * views.shape[1] + v:03d}.png")
    return folder


def _view(folder: Path) -> Path:
    return folder / "input_Cam004.png"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_truncated_in_idat(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    data = _view(folder).read_bytes()
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8:start - 4])[0]
    _view(folder).write_bytes(data[:start + length // 2])
    return folder, _view(folder)


def png_zero_bytes(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    _view(folder).write_bytes(b"")
    return folder, _view(folder)


def png_directory(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    _view(folder).unlink()
    _view(folder).mkdir()
    return folder, _view(folder)


def png_rgba_transparent(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    rgba = np.asarray(Image.open(_view(folder)).convert("RGBA")).copy()
    rgba[3, 5, 3] = 128
    Image.fromarray(rgba).save(_view(folder))
    return folder, _view(folder)


def png16_rgba_transparent(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    rgba = np.asarray(Image.open(_view(folder)).convert("RGBA")).astype(np.uint16) * 257
    rgba[0, 0, 3] = 65534  # 16-bit alpha just below opaque: the high byte alone would say opaque
    write_png16(_view(folder), rgba)
    return folder, _view(folder)


def png_grey_alpha_transparent(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    la = np.asarray(Image.open(_view(folder)).convert("LA")).copy()
    la[..., 1] = 0
    Image.fromarray(la, "LA").save(_view(folder))
    return folder, _view(folder)


def png_palette_transparent(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    indices = np.zeros((16, 16), np.uint8)
    indices[8:] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 255, 255, 255])
    image.save(_view(folder), transparency=1)  # palette entry 1, half of the view, is transparent
    return folder, _view(folder)


def png_mixed_sizes(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    Image.new("RGB", (17, 16)).save(_view(folder))
    return folder, _view(folder)


def png_missing(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    _view(folder).unlink()
    return folder, folder


def png_duplicate(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    shutil.copy(_view(folder), folder / "input_Cam0004.png")
    return folder, folder


def cfg_nan_focal(tmp: Path) -> tuple[Path, Path]:
    folder = _hci(tmp / "scene")
    (folder / "parameters.cfg").write_text("[intrinsics]\nfocal_length_mm = nan\nsensor_size_mm = 35\n"
                                           "image_resolution_x_px = 16\n[extrinsics]\nnum_cams_x = 3\nnum_cams_y = 3\n")
    return folder, folder / "parameters.cfg"


def _mat(tmp: Path, value: Any) -> tuple[Path, Path]:
    path = tmp / "scene.mat"
    scipy.io.savemat(path, value)
    return path, path


def _float_lf(bad: float) -> np.ndarray:
    data = np.full((2, 2, 4, 4, 3), 0.5)
    data[1, 0, 2, 3, 1] = bad
    return data


def _mat73_declared(shape: tuple[int, ...]) -> Callable[[Path], tuple[Path, Path]]:
    def make(tmp: Path) -> tuple[Path, Path]:
        path = tmp / "scene.mat"
        with h5py.File(path, "w") as mat:  # declared, never written (MATLAB order: reversed)
            mat.create_dataset("LF", shape=shape, dtype="f8", chunks=(3, 100, 100, 1, 1))
        return path, path
    return make


def mat_zero_bytes(tmp: Path) -> tuple[Path, Path]:
    path = tmp / "scene.mat"
    path.write_bytes(b"")
    return path, path


def _zarr(tmp: Path, shape: tuple[int, ...], dtype: str = "uint8", fill: float | None = None,
          chunks: tuple[int, ...] | None = None, attrs: dict | None = None) -> Path:
    path = tmp / "bad.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3, attributes=attrs or {})
    array = group.create_array("views", shape=shape, dtype=dtype, chunks=chunks or shape)
    if fill is not None:
        array[...] = fill
    return path


def zarr_damaged_chunk(tmp: Path) -> Path:
    path = tmp / "bad.zarr"
    write_lightfield(LightField(make_synthetic_lightfield(3, 3, 16, 16)), path)
    chunk = next(f for f in sorted((path / "views").rglob("*")) if f.is_file() and f.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[: len(chunk.read_bytes()) // 2])
    return path


def zarr_damaged_metadata(tmp: Path) -> Path:
    path = tmp / "bad.zarr"
    write_lightfield(LightField(make_synthetic_lightfield(3, 3, 16, 16)), path)
    (path / "views" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')
    return path


# A light field zarr as every stage reads it (``read_lightfield``): maker, and the problem named.
BAD_LIGHTFIELDS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "float views with NaN": (lambda t: _zarr(t, (3, 3, 16, 16, 3), "float32", np.nan), "must be uint8"),
    "wrong shape": (lambda t: _zarr(t, (3, 16, 16, 3)), "must be uint8 with shape (U, V, H, W, 3)"),
    "no views": (lambda t: _zarr(t, (0, 3, 16, 16, 3)), "are empty"),
    "huge declared shape": (lambda t: _zarr(t, (9, 9, 100000, 100000, 3), chunks=(1, 1, 512, 512, 3)),
                            "more than 4 GiB"),
    "damaged chunk": (zarr_damaged_chunk, "a chunk is damaged"),
    "damaged array metadata": (zarr_damaged_metadata, "cannot open the 'views' array"),
    "camera attribute not an object": (lambda t: _zarr(t, (3, 3, 16, 16, 3), fill=9, attrs={"camera": "x"}),
                                       "camera metadata"),
    "negative focal_px": (lambda t: _zarr(t, (3, 3, 16, 16, 3), fill=9, attrs={"camera": {"focal_px": -5.0}}),
                          "focal_px"),
}

INGEST_CASES: dict[str, tuple[Callable[[Path], tuple[Path, Path]], str]] = {
    "PNG truncated in its IDAT data": (png_truncated_in_idat, "cannot read image"),
    "zero-byte PNG": (png_zero_bytes, "cannot read image"),
    "directory where a view is expected": (png_directory, "cannot read image"),
    "RGBA view with transparent pixels": (png_rgba_transparent, "transparent pixel"),
    "16-bit RGBA view with transparent pixels": (png16_rgba_transparent, "transparent pixel"),
    "grey+alpha view, fully transparent": (png_grey_alpha_transparent, "256 transparent pixel"),
    "palette view with a transparent entry": (png_palette_transparent, "128 transparent pixel"),
    "views of mixed sizes": (png_mixed_sizes, "16x17"),
    "missing view": (png_missing, "missing"),
    "duplicate view": (png_duplicate, "duplicate view index 4"),
    "parameters.cfg with a NaN focal length": (cfg_nan_focal, "focal_px"),
    ".mat without variable LF": (lambda t: _mat(t, {"X": np.zeros((2, 2))}), "no variable 'LF'"),
    ".mat of the wrong shape": (lambda t: _mat(t, {"LF": np.zeros((3, 3, 4, 4), np.uint8)}), "must be 5-D"),
    ".mat with an empty axis": (lambda t: _mat(t, {"LF": np.zeros((3, 0, 4, 4, 3), np.uint8)}), "are empty"),
    ".mat with NaN": (lambda t: _mat(t, {"LF": _float_lf(np.nan)}), "1 non-finite values"),
    ".mat with Inf": (lambda t: _mat(t, {"LF": _float_lf(-np.inf)}), "1 non-finite values"),
    ".mat v7.3 declaring 30 GB of views": (_mat73_declared((3, 1000, 1000, 100, 100)), "more than 4 GiB as 8-bit"),
    ".mat v7.3 declaring 9.6 GB of float64": (_mat73_declared((3, 1000, 1000, 20, 20)), "8-byte values"),
    "zero-byte .mat": (mat_zero_bytes, "cannot read MATLAB file"),
}


@pytest.mark.parametrize("case", [*INGEST_CASES, *(f"zarr: {name}" for name in BAD_LIGHTFIELDS)])
def test_ingest_of_a_malformed_source_is_one_line_naming_the_file(case: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    if case.startswith("zarr: "):
        make_zarr, problem = BAD_LIGHTFIELDS[case.removeprefix("zarr: ")]
        src = named = make_zarr(tmp_path / "in")
    else:
        make, problem = INGEST_CASES[case]
        src, named = make(tmp_path / "in")
    out = tmp_path / "lf.zarr"
    assert problem in one_line_error(capsys, argv("ingest", src, out), named)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, not even a partial one


def test_ingest_epfl_mat_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scene.mat").mkdir()
    assert "not a file" in one_line_error(capsys, argv("ingest", tmp_path / "scene.mat", tmp_path / "o.zarr",
                                                       "--format", "epfl-mat"), tmp_path / "scene.mat")


def test_usable_views_are_still_accepted(tmp_path: Path) -> None:
    """16-bit, grey, opaque RGBA and palette views (transparent entry unused) become 8-bit RGB."""
    views = make_synthetic_lightfield(2, 2, 8, 8)
    folder = _hci(tmp_path / "scene", views)
    write_png16(folder / "input_Cam000.png", views[0, 0].astype(np.uint16) * 257)
    Image.fromarray(views[0, 1, ..., 0]).save(folder / "input_Cam001.png")
    Image.fromarray(np.concatenate([views[1, 0], np.full((8, 8, 1), 255, np.uint8)], -1)).save(
        folder / "input_Cam002.png")
    palette = Image.fromarray(np.zeros((8, 8), np.uint8), "P")
    palette.putpalette([10, 20, 30, 255, 255, 255])
    palette.save(folder / "input_Cam003.png", transparency=1)
    assert main(argv("ingest", folder, tmp_path / "lf.zarr")) == 0
    got = np.asarray(zarr.open_group(tmp_path / "lf.zarr", mode="r")["views"][...])
    assert np.array_equal(got[0, 0], views[0, 0]) and np.array_equal(got[1, 0], views[1, 0])
    assert np.array_equal(got[0, 1], np.repeat(views[0, 1, ..., :1], 3, axis=-1))
    assert (got[1, 1] == [10, 20, 30]).all()


# --------------------------------------------------------------------------- light fields into every stage

LIGHTFIELD_READERS: dict[str, Callable[[dict[str, Path], Path, Path], list[str]]] = {
    "train": lambda c, lf, out: argv("train", lf, out / "o.pt"),
    "lowrank": lambda c, lf, out: argv("lowrank", c["nerf"], lf, out / "o.pt", "--rank", 4),
    "distill": lambda c, lf, out: argv("distill", c["cores"], lf, out / "o.pt"),
    "quantize": lambda c, lf, out: argv("quantize", c["dlr"], lf, out / "o.pt", "--centroids", 8),
    "latent-fit": lambda c, lf, out: argv("latent-fit", lf, out / "o.pt", "--lmbda", 0.01),
    "latent-encode": lambda c, lf, out: argv("latent-encode", c["latent"], lf, out / "o.lfc"),
    "evaluate (reference)": lambda c, lf, out: argv("evaluate", lf, c["lf"], out / "o.json"),
    "evaluate (decoded)": lambda c, lf, out: argv("evaluate", c["lf"], lf, out / "o.json"),
}


@pytest.mark.parametrize("lightfield", list(BAD_LIGHTFIELDS))
@pytest.mark.parametrize("stage", list(LIGHTFIELD_READERS))
def test_every_stage_names_a_malformed_light_field(stage: str, lightfield: str, chain: dict[str, Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, problem = BAD_LIGHTFIELDS[lightfield]
    bad = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert problem in one_line_error(capsys, LIGHTFIELD_READERS[stage](chain, bad, out), bad)
    assert not any(out.iterdir())


# A stage that continues from a model must get the light field the model was made for.
MISMATCHED: dict[str, tuple[Callable[[dict[str, Path], Path], list[str]], str, str]] = {
    "lowrank": (lambda c, out: argv("lowrank", c["nerf"], c["other_lf"], out, "--rank", 4), "other_lf",
                "was trained on"),
    "distill": (lambda c, out: argv("distill", c["cores"], c["other_lf"], out), "other_lf", "was trained on"),
    "quantize": (lambda c, out: argv("quantize", c["dlr"], c["other_lf"], out, "--centroids", 8), "other_lf",
                 "was trained on"),
    "latent-encode": (lambda c, out: argv("latent-encode", c["latent"], c["other_lf"], out), "other_lf",
                      "was fitted to"),
    "latent-fit --init": (lambda c, out: argv("latent-fit", c["other_lf"], out, "--lmbda", 0.02, "--init", c["latent"]),
                          "latent", "cannot warm-start"),
    "evaluate --model (qdlr)": (lambda c, out: argv("evaluate", c["other_lf"], c["other_lf"], out, "--model", c["q"]),
                                "q", "the reference has 3x3 views of 24x24"),
    "evaluate --model (latent)": (lambda c, out: argv("evaluate", c["other_lf"], c["other_lf"], out,
                                                      "--model", c["latent"]), "latent", "the reference has"),
}


@pytest.mark.parametrize("stage", list(MISMATCHED))
def test_a_model_and_a_light_field_of_different_scenes(stage: str, chain: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    make, named, problem = MISMATCHED[stage]
    out = tmp_path / "out.x"
    assert problem in one_line_error(capsys, make(chain, out), chain[named])
    assert not out.exists()


# --------------------------------------------------------------------------- checkpoints


def _first_matrix(state: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in state.items() if v.dim() == 2)


# (how a valid checkpoint is damaged: an edit of its contents, or of its file; the problem named)
SCENE_CHECKPOINT_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any] | str, str]] = {
    "truncated": ("truncate", "not a readable lfcomp checkpoint"),
    "zero bytes": ("empty", "not a readable lfcomp checkpoint"),
    "a directory": ("directory", "is a directory"),
    "a torch file that is not a checkpoint": ("tensor", "not an lfcomp checkpoint"),
    "spec width 10^7": (lambda c: c["spec"]["field"].update(width=10**7), "field.width = 10000000"),
    "spec size 10^6 x 10^6": (lambda c: c["spec"].update(size=[10**6, 10**6]), "size = 1000000"),
    "spec without a field": (lambda c: c["spec"].pop("field"), "spec lacks field"),
    "spec with a NaN depth range": (lambda c: c["spec"].update(near=float("nan")), "near = nan"),
    "spec of another width": (lambda c: c["spec"]["field"].update(width=64), "the model it describes needs"),
    "spec not an object": (lambda c: c.update(spec="nerf"), "spec is a str"),
    "negative focal length": (lambda c: c["camera"].update(focal=-1.0), "focal > 0"),
    "state_dict missing a tensor": (lambda c: c["state_dict"].pop("camera.kappa"), "missing camera.kappa"),
    "state_dict with an extra tensor": (lambda c: c["state_dict"].update(bogus=torch.zeros(1)), "unexpected bogus"),
    "state_dict tensor of a wrong shape": (lambda c: c["state_dict"].update({_first_matrix(c["state_dict"]):
                                                                             torch.zeros(3, 3)}), "(3, 3)"),
    "state_dict with NaN": (lambda c: c["state_dict"][_first_matrix(c["state_dict"])].fill_(float("nan")),
                            "holds NaN or Inf"),
    "state_dict not a mapping": (lambda c: c.update(state_dict=[1, 2]), "not a mapping of names to tensors"),
    "no stage reports": (lambda c: c.pop("stages"), "'stages' must map"),
    "held-out view outside the grid": (lambda c: c.update(holdout_views=[[7, 7]]), "holdout_views = [[7, 7]]"),
}
QUANTIZED_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "quantized model missing": (lambda c: c.pop("quantized"), "quantized model does not fit the spec"),
    "codebook of the wrong size": (lambda c: c["quantized"].update(codebook=torch.zeros(3)), "codebook must be 8"),
    "symbols outside the alphabet": (lambda c: c["quantized"]["weight_symbols"][0].fill_(10**6), "outside 0..65543"),
    "too few weight symbols": (lambda c: c["quantized"]["weight_symbols"].__setitem__(0, torch.zeros(3).long()),
                               "int64 codes"),
}
SCENE_READERS: dict[str, tuple[str, Callable[[dict[str, Path], Path, Path], list[str]]]] = {
    "lowrank": ("nerf", lambda c, ckpt, out: argv("lowrank", ckpt, c["lf"], out / "o.pt", "--rank", 4)),
    "decompose": ("lr", lambda c, ckpt, out: argv("decompose", ckpt, out / "o.zarr")),
    "quantize": ("dlr", lambda c, ckpt, out: argv("quantize", ckpt, c["lf"], out / "o.pt", "--centroids", 8)),
    "encode": ("q", lambda c, ckpt, out: argv("encode", ckpt, out / "o.lfc")),
    "evaluate --model": ("q", lambda c, ckpt, out: argv("evaluate", c["lf"], c["lf"], out / "o.json", "--model", ckpt)),
}


def damaged_checkpoint(source: Path, edit: Callable[[dict[str, Any]], Any] | str, tmp: Path) -> Path:
    path = tmp / "damaged.pt"
    if edit == "truncate":
        path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    elif edit == "empty":
        path.write_bytes(b"")
    elif edit == "directory":
        path.mkdir()
    elif edit == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        ckpt = torch.load(source, weights_only=True)
        edit(ckpt)
        torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(("stage", "case"), [(stage, case) for stage, (source, _) in SCENE_READERS.items()
                                            for case in [*SCENE_CHECKPOINT_CASES,
                                                         *(QUANTIZED_CASES if source == "q" else [])]])
def test_every_stage_names_a_damaged_checkpoint(stage: str, case: str, chain: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    source, command = SCENE_READERS[stage]
    edit, problem = {**SCENE_CHECKPOINT_CASES, **QUANTIZED_CASES}[case]
    ckpt = damaged_checkpoint(chain[source], edit, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert problem in one_line_error(capsys, command(chain, ckpt, out), ckpt)
    assert not any(out.iterdir())


LATENT_CHECKPOINT_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any] | str, str]] = {
    "truncated": ("truncate", "not a readable lfcomp checkpoint"),
    "a directory": ("directory", "is a directory"),
    "no report": (lambda c: c.pop("report"), "invalid latent-codec geometry (geometry is a NoneType"),
    "geometry of 10^6 px": (lambda c: c["report"]["geometry"].update(size=[10**6, 10**6]), "size = 1000000 outside 1..8192"),
    "synthesis width 10^7": (lambda c: c["report"]["geometry"].update(hidden=[10**7]), "hidden = 10000000 outside 1..256"),
    "entropy model width 10^7": (lambda c: c["config"]["latent"].update(arm_hidden=10**7), "arm_hidden = 10000000"),
    "geometry of other views": (lambda c: c["report"]["geometry"].update(size=[24, 24]),
                                "the model it describes needs"),
    "state_dict missing a tensor": (lambda c: c["state_dict"].pop("field.disparity"), "missing field.disparity"),
    "state_dict tensor of a wrong shape": (lambda c: c["state_dict"].update({_first_matrix(c["state_dict"]):
                                                                             torch.zeros(3, 3)}), "(3, 3)"),
    "state_dict with Inf": (lambda c: c["state_dict"]["field.latents.0"].fill_(float("inf")), "holds NaN or Inf"),
    "no rate point": (lambda c: c.pop("lmbda"), "lmbda = None"),
}
LATENT_READERS: dict[str, Callable[[dict[str, Path], Path, Path], list[str]]] = {
    "latent-encode": lambda c, ckpt, out: argv("latent-encode", ckpt, c["lf"], out / "o.lfc"),
    "latent-fit --init": lambda c, ckpt, out: argv("latent-fit", c["lf"], out / "o.pt", "--lmbda", 0.02,
                                                   "--init", ckpt),
    "evaluate --model": lambda c, ckpt, out: argv("evaluate", c["lf"], c["lf"], out / "o.json", "--model", ckpt),
}


@pytest.mark.parametrize("case", list(LATENT_CHECKPOINT_CASES))
@pytest.mark.parametrize("stage", list(LATENT_READERS))
def test_latent_stages_name_a_damaged_checkpoint(stage: str, case: str, chain: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    edit, problem = LATENT_CHECKPOINT_CASES[case]
    ckpt = damaged_checkpoint(chain["latent"], edit, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert problem in one_line_error(capsys, LATENT_READERS[stage](chain, ckpt, out), ckpt)
    assert not any(out.iterdir())


# A checkpoint (or cores) from another stage: (command, the input given, the problem named).
OTHER_STAGE: dict[str, tuple[Callable[[dict[str, Path], Path], list[str]], str, str]] = {
    "lowrank checkpoint to quantize": (lambda c, o: argv("quantize", c["lr"], c["lf"], o, "--centroids", 8), "lr",
                                       "is a 'lowrank' checkpoint, expected distill"),
    "latent checkpoint to quantize": (lambda c, o: argv("quantize", c["latent"], c["lf"], o, "--centroids", 8),
                                      "latent", "is a 'latent' checkpoint, expected distill"),
    "latent checkpoint to distill": (lambda c, o: argv("distill", c["latent"], c["lf"], o), "latent",
                                     "not a zarr group of TT cores"),
    "light field to distill": (lambda c, o: argv("distill", c["lf"], c["lf"], o), "lf", "not an lfcomp TT-cores zarr"),
    "nerf checkpoint to encode": (lambda c, o: argv("encode", c["nerf"], o), "nerf", "expected quantize"),
    "quantize checkpoint to latent-encode": (lambda c, o: argv("latent-encode", c["q"], c["lf"], o), "q",
                                             "expected latent"),
    "nerf checkpoint as a warm start": (lambda c, o: argv("latent-fit", c["lf"], o, "--lmbda", 0.1,
                                                          "--init", c["nerf"]), "nerf", "expected latent"),
    "distill checkpoint to evaluate": (lambda c, o: argv("evaluate", c["lf"], c["lf"], o, "--model", c["dlr"]), "dlr",
                                       "expected quantize or latent"),
    "checkpoint as a light field": (lambda c, o: argv("train", c["nerf"], o), "nerf", "not a zarr group"),
}


@pytest.mark.parametrize("case", list(OTHER_STAGE))
def test_an_input_of_another_stage_is_named(case: str, chain: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    make, named, problem = OTHER_STAGE[case]
    out = tmp_path / "out.x"
    assert problem in one_line_error(capsys, make(chain, out), chain[named])
    assert not out.exists()


# --------------------------------------------------------------------------- TT cores (distill's input)


def _cores_attrs(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        meta = json.loads((path / "zarr.json").read_text())
        change(meta["attributes"])
        (path / "zarr.json").write_text(json.dumps(meta))
    return edit


def _cores_array(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        group = zarr.open_group(path, mode="a")
        q1 = np.asarray(group["slots/trunk0/Q1"][...])
        del group["slots/trunk0/Q1"]
        group.create_array("slots/trunk0/Q1", data=change(q1))
    return edit


def _damage_chunk(path: Path) -> None:
    for chunk in (path / "slots" / "trunk0" / "Q1").rglob("*"):
        if chunk.is_file() and chunk.name != "zarr.json":
            chunk.write_bytes(b"\x00\x01")


CORES_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "spec width 10^7": (_cores_attrs(lambda a: a["spec"]["field"].update(width=10**7)), "field.width = 10000000"),
    "camera not finite": (_cores_attrs(lambda a: a["camera"].update(focal="NaN")), "camera or camera_state"),
    "a slot missing": (_cores_attrs(lambda a: a.update(slots=a["slots"][1:])), "TT cores hold slots"),
    "integer cores": (_cores_array(lambda q: q.astype(np.int32)), "not finite floats (int32)"),
    "NaN cores": (_cores_array(lambda q: np.full_like(q, np.nan)), "not finite floats"),
    "cores of the wrong shape": (_cores_array(lambda q: q[:, :5]), "the spec needs"),
    "a damaged chunk": (_damage_chunk, "damaged TT cores"),
    "held-out view outside the grid": (_cores_attrs(lambda a: a.update(holdout_views=[[5, 0]])), "holdout_views"),
}


@pytest.mark.parametrize("case", list(CORES_CASES))
def test_distill_names_damaged_cores(case: str, chain: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    edit, problem = CORES_CASES[case]
    cores = tmp_path / "cores.zarr"
    shutil.copytree(chain["cores"], cores)
    edit(cores)
    assert problem in one_line_error(capsys, argv("distill", cores, chain["lf"], tmp_path / "o.pt"), cores)
    assert not (tmp_path / "o.pt").exists()


# --------------------------------------------------------------------------- resume states: ignored, not fatal

RESUMABLE: dict[str, Callable[[dict[str, Path], Path], list[str]]] = {
    "train": lambda c, out: argv("train", c["lf"], out),
    "lowrank": lambda c, out: argv("lowrank", c["nerf"], c["lf"], out, "--rank", 4),
    "latent-fit": lambda c, out: argv("latent-fit", c["lf"], out, "--lmbda", 0.01),
}


@pytest.fixture(scope="module")
def resume_states(chain: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """A genuine resume state (after step 2 of 4) of each resumable command on the chain's inputs."""
    d = tmp_path_factory.mktemp("resume")
    states = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resume_state.Resume, "remove", lambda self: None)  # keep the state a finished run leaves
        for stage, command in RESUMABLE.items():
            out = d / f"{stage}.pt"
            assert main(command(chain, out)) == 0
            states[stage] = torch.load(out.with_name(out.name + ".resume"), weights_only=True)
            assert states[stage]["step"] == 2
    return states


def _wrong_extra(state: dict[str, Any]) -> dict[str, Any]:
    extra = state["extra"]
    if "Z" in extra:  # ADMM: a Z of the wrong shape
        return {**state, "extra": {**extra, "Z": {name: torch.zeros(2) for name in extra["Z"]}}}
    return {**state, "extra": {"unexpected": 1}}


def _wrong_optimiser(state: dict[str, Any]) -> dict[str, Any]:
    optimiser = state["optimiser"]
    return {**state, "optimiser": {**optimiser, "state": {i: {**entry, "exp_avg": torch.zeros(7)}
                                                          for i, entry in optimiser["state"].items()}}}


OWN_STATE = "a stage's own state of a wrong structure"
RESUME_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any] | None, str]] = {
    "truncated": (None, "ignoring unreadable resume state"),
    "of another run": (lambda s: {**s, "fingerprint": "0" * 64}, "belongs to another run"),
    "a torch file that is not a dict": (lambda s: torch.zeros(3), "not a resume state"),
    "a stage checkpoint in its place": (lambda s: {"format": "lfcomp-checkpoint-v1", "stage": "nerf",
                                                   "state_dict": s["model"]}, "belongs to another run"),
    "missing keys": (lambda s: {"fingerprint": s["fingerprint"], "step": 2}, "missing model"),
    "model tensor of a wrong shape": (lambda s: {**s, "model": {**s["model"], _first_matrix(s["model"]):
                                                                torch.zeros(2, 2)}}, "model tensor"),
    "model tensor missing": (lambda s: {**s, "model": dict(list(s["model"].items())[1:])}, "model tensor names differ"),
    "optimiser state of a wrong shape": (_wrong_optimiser, "optimiser exp_avg"),
    "optimiser settings missing": (lambda s: {**s, "optimiser": {**s["optimiser"], "param_groups": [
        {"params": g["params"]} for g in s["optimiser"]["param_groups"]]}}, "optimiser settings"),
    OWN_STATE: (_wrong_extra, "extra"),
    "a step that is not a count": (lambda s: {**s, "step": "2"}, "not a count of steps"),
    "a generator state of the wrong size": (lambda s: {**s, "generator": torch.zeros(5, dtype=torch.uint8)},
                                            "generator"),
}


@pytest.mark.parametrize(("stage", "case"), [(stage, case) for stage in RESUMABLE for case in RESUME_CASES
                                            if not (stage == "train" and case == OWN_STATE)])  # train has none
def test_an_unusable_resume_state_is_ignored_with_a_warning(stage: str, case: str, chain: dict[str, Path],
                                                            resume_states: dict[str, dict[str, Any]],
                                                            tmp_path: Path) -> None:
    edit, warning = RESUME_CASES[case]
    out, log = tmp_path / "out.pt", tmp_path / "stage.log"
    resume = out.with_name(out.name + ".resume")
    if edit is None:
        resume.write_bytes(b"PK\x03\x04 cut short")
    else:
        torch.save(edit(resume_states[stage]), resume)
    assert main([*RESUMABLE[stage](chain, out), "--log", str(log)]) == 0  # starts over instead of failing
    text = log.read_text()
    assert f"ignoring {'unreadable ' if edit is None else ''}resume state {resume}" in text and warning in text
    assert "resuming from" not in text
    assert out.exists() and not resume.exists()


def test_a_resume_state_that_fails_to_load_leaves_the_loop_as_it_was(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure the structural checks do not foresee (here: the scheduler refuses its state) puts
    back what was already loaded, so the stage starts over from its own initial weights."""
    def loop() -> resume_state.TrainingLoop:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
        return resume_state.TrainingLoop(model, optimiser, torch.optim.lr_scheduler.ExponentialLR(optimiser, 0.5),
                                    torch.Generator().manual_seed(1), [], [])

    trained = loop()
    with torch.no_grad():
        trained.model.weight.add_(1.0)
    resume = resume_state.Resume(tmp_path / "state.resume", every=1, fingerprint="run")
    resume.save(trained, 7)
    fresh = loop()
    initial = {k: v.clone() for k, v in fresh.model.state_dict().items()}

    calls = []
    original = torch.optim.lr_scheduler.ExponentialLR.load_state_dict

    def refuse_once(self: Any, state: dict[str, Any]) -> None:  # the saved state, not the one put back
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("unexpected scheduler state")
        original(self, state)

    monkeypatch.setattr(torch.optim.lr_scheduler.ExponentialLR, "load_state_dict", refuse_once)
    assert resume.restore(fresh) == 0 and fresh.completed == 0
    assert all(torch.equal(initial[k], v) for k, v in fresh.model.state_dict().items())
    assert fresh.optimiser.state_dict()["state"] == {} and len(calls) == 2


@pytest.mark.parametrize("stage", list(RESUMABLE))
def test_a_genuine_resume_state_still_resumes(stage: str, chain: dict[str, Path],
                                              resume_states: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    out, log = tmp_path / "out.pt", tmp_path / "stage.log"
    torch.save(resume_states[stage], out.with_name(out.name + ".resume"))
    assert main([*RESUMABLE[stage](chain, out), "--log", str(log)]) == 0
    assert "resuming from" in log.read_text() and "ignoring" not in log.read_text()


# --------------------------------------------------------------------------- metrics.json (summaries, report, plots)


def _metrics(metrics: dict[str, Any], **change: Any) -> str:
    return json.dumps({**metrics, **change})


GOOD_METRICS = {"psnr_rgb": 30.0, "psnr_y": 31.0, "psnr_rgb_views": [[30.0] * 3] * 3, "psnr_y_views": [[31.0] * 3] * 3,
                "bytes": 100, "bits": 800, "bpp": 0.1, "grid": [3, 3], "size": [16, 16], "codec": "qdlr",
                "model_kind": "nerf", "rate_point": {"rank": 4, "centroids": 8},
                "stages": {"nerf": {"psnr_rgb": 32.0, "params": 1000}}}
METRICS_CASES: dict[str, tuple[str | bytes | None, str]] = {
    "truncated": (json.dumps(GOOD_METRICS)[:60], "not valid JSON"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00", "not a text (UTF-8) file"),
    "nested 10^5 deep": ("[" * 100000 + "]" * 100000, "nested too deeply"),
    "a directory": (None, "cannot read metrics"),
    "bytes not a number": (_metrics(GOOD_METRICS, bytes="many"), "bytes = 'many'"),
    "bpp NaN": (_metrics(GOOD_METRICS, bpp=float("nan")), "bpp = nan"),
    "negative bpp": (_metrics(GOOD_METRICS, bpp=-0.5), "bpp = -0.5"),
    "PSNR a string": (_metrics(GOOD_METRICS, psnr_rgb="high"), "psnr_rgb = 'high'"),
    "grid of one number": (_metrics(GOOD_METRICS, grid=[3]), "grid = [3]"),
    "stages a list": (_metrics(GOOD_METRICS, stages=[1, 2]), "stages = [1, 2]"),
    "rate point a list": (_metrics(GOOD_METRICS, rate_point=[4, 8]), "rate_point = [4, 8]"),
    "per-view PSNR a string": (_metrics(GOOD_METRICS, psnr_rgb_views="x"), "psnr_rgb_views = 'x'"),
}
METRICS_READERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "summarize": lambda m, out: argv("summarize", out / "s.csv", out / "s.md", m),
    "report": lambda m, out: argv("report", out / "tables", m),
    "plots": lambda m, out: argv("plots", out / "figures", m, "--no-error-maps"),
}


@pytest.mark.parametrize("case", list(METRICS_CASES))
@pytest.mark.parametrize("stage", list(METRICS_READERS))
def test_reports_name_a_malformed_metrics_file(stage: str, case: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    content, problem = METRICS_CASES[case]
    path = tmp_path / "scene" / "nerf" / "r4" / "n8" / "metrics.json"
    path.parent.mkdir(parents=True)
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    out = tmp_path / "out"
    out.mkdir()
    assert problem in one_line_error(capsys, METRICS_READERS[stage](path, out), path)
    assert not any(out.iterdir())

"""Stand-ins for real captured light fields (issue 14), built from an HCI scene, and how the scene
models fit them.

A Lytro or gantry capture differs from an HCI render in ways a scene model must survive: few views
with sub-pixel parallax (a plenoptic camera), sensor noise, vignetting that darkens the outer
sub-aperture views, an angular axis that runs the other way, non-square views, no calibration file.
This script builds such light fields from one HCI scene, reproducibly (fixed seed), as folders of
``view_UU_VV.png`` that ``lfcomp ingest --format folder`` reads (so no ``parameters.cfg``):

* ``base``: the central U×V views (default 5×5), area-downsampled by ``--downsample`` (default 4);
* ``noisy``: ``base`` with Gaussian sensor noise of σ = 2 levels and a plenoptic-like vignetting
  (radial cos⁴ falloff, stronger the further a view is from the centre of the grid);
* ``flipped``: ``base`` with the vertical angular axis reversed (row u read as U−1−u);
* ``nonsquare``: a central crop of 27/32 of the height before the downsample (432×512 of a 512²
  scene, 108×128 at 4×, close to the shape of the gantry and Lytro captures of the issue).

With ``--run`` it then ingests each stand-in and trains NeRF-org and NeLF-org with the chosen preset
(the ``lfcomp`` CLI, 1 thread per job, ``--jobs`` at once) and prints, per stand-in and model kind,
the PSNR of the stage report against the floors it records (centre view and mean image sent to
every view), the margin over the best floor; and per stand-in the disparity range and vertical view
step ingest estimated from the views against the truth (the HCI scene's ``gt_disp_lowres.pfm``,
cropped and scaled as the stand-in, 2nd-98th percentiles as the estimate states them; the
vertical step is −1 for ``flipped``, 1 otherwise). With ``--calibrated`` it also trains each model on
a copy of each stand-in whose calibration is that truth instead of the estimate (the calibrated
run: same code, same camera band; for kinds whose rays come from the camera), and prints its PSNR
beside:

    python benchmarks/standins.py ../shared/data/hci_4d_lf_benchmark/cotton /tmp/standins --run --calibrated

With ``--configfile FILE`` it also writes a workflow config that adds the stand-ins as scenes (and
runs them), so their rate points, anchors and floors come from the workflow as any scene's do:

    python benchmarks/standins.py ../shared/data/hci_4d_lf_benchmark/cotton /tmp/standins --configfile standins.yaml
    .venv/bin/snakemake --profile profiles/local --configfile standins.yaml --config codecs=[]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from lfcomp.io.lightfield import LightField, ingest, probe_shape, read_lightfield, write_lightfield
from lfcomp.models.registry import model_kind

VARIANTS = ("base", "noisy", "flipped", "nonsquare")
NOISE_SIGMA = 2.0  # 8-bit levels
VIGNETTING = 0.35  # relative darkening of a corner view's corner: (cos θ)^4 with θ grown to give it


def kept_size(variant: str, height: int, width: int) -> tuple[int, int]:
    """The central crop of the scene's views that the stand-in ``variant`` keeps, before the downsample."""
    return (height * 27 // 32, width) if variant == "nonsquare" else (height, width)


def build(source: Path, variant: str, views: tuple[int, int], downsample: int) -> np.ndarray:
    """The stand-in ``variant`` of the HCI scene at ``source``: uint8 views (U, V, H, W, 3)."""
    _, _, H, W = probe_shape(source, "hci", views=views)  # from the file headers: nothing decoded twice
    crop = kept_size(variant, H, W)
    lf = ingest(source, "hci", views=views, crop=crop, size=(crop[0] // downsample, crop[1] // downsample))
    out = lf.views.astype(np.float64)
    if variant == "noisy":
        out = vignette(out) + np.random.default_rng(0).normal(0.0, NOISE_SIGMA, out.shape)
    if variant == "flipped":
        out = out[::-1]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def vignette(views: np.ndarray) -> np.ndarray:
    """Radial cos⁴ falloff per view, its strength growing with the view's distance from the grid
    centre (the outer sub-aperture views of a plenoptic camera see the dimmer lens rim)."""
    U, V, H, W, _ = views.shape
    y, x = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    radius = np.sqrt(x**2 + y**2) / np.sqrt(2)  # 1 at the image corners
    out = np.empty_like(views)
    for u in range(U):
        for v in range(V):
            reach = np.hypot(u - (U - 1) / 2, v - (V - 1) / 2) / max(np.hypot((U - 1) / 2, (V - 1) / 2), 1e-9)
            # (cos θ)^4 = 1 − VIGNETTING at the corner of the corner views, 1 − VIGNETTING/2 of the centre view
            angle = np.arccos((1 - VIGNETTING * (0.5 + 0.5 * reach)) ** 0.25)
            out[u, v] = views[u, v] * (np.cos(angle * radius) ** 4)[..., None]
    return out


def read_pfm(path: Path) -> np.ndarray:
    """A PFM image (the HCI ground truth) as float32 rows top to bottom."""
    with open(path, "rb") as f:
        channels = {b"Pf": 1, b"PF": 3}[f.readline().strip()]
        width, height = map(int, f.readline().split())
        scale = float(f.readline())
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4", count=width * height * channels)
    return data.reshape(height, width, channels)[::-1, :, 0].astype(np.float32)


def true_disparity(source: Path, variant: str, downsample: int) -> dict | None:
    """The stand-in's true disparity (px per view step) from the scene's ground truth: the range of
    the central crop the stand-in keeps, divided by the downsample; None without a ground truth."""
    path = source / "gt_disp_lowres.pfm"
    if not path.exists():
        return None
    disparity = read_pfm(path)
    (H, W), (h, w) = disparity.shape, kept_size(variant, *disparity.shape)
    top, left = (H - h) // 2, (W - w) // 2  # the central crop, as ingest takes it
    disparity = disparity[top:top + h, left:left + w] / downsample
    low, high = np.percentile(disparity, (2.0, 98.0))
    return {"range": [float(low), float(high)], "min_max": [float(disparity.min()), float(disparity.max())],
            "vertical_step": -1.0 if variant == "flipped" else 1.0}


def calibrated_copy(lf_path: Path, truth: dict) -> Path:
    """The ingested stand-in at ``lf_path`` with its calibration replaced by the truth (the true
    disparity range on both axes, the vertical one times the true step, and the true step), as
    ``<name>_calibrated.zarr``: the run the estimate is compared against, through the same code."""
    out = lf_path.with_name(f"{lf_path.stem}_calibrated.zarr")
    if not out.exists():
        lf = read_lightfield(lf_path)
        step = truth["vertical_step"]
        calibration = {"method": "ground truth (gt_disp_lowres.pfm), 2-98 percentiles",
                       "horizontal": [round(x, 4) for x in truth["range"]],
                       "vertical": sorted(round(x * step, 4) for x in truth["range"]), "vertical_step": step}
        write_lightfield(LightField(lf.views, {**lf.attrs, "calibration": calibration}), out)
    return out


def write_folder(views: np.ndarray, folder: Path) -> None:
    """Views as ``folder/view_UU_VV.png`` (0-based row, column)."""
    folder.mkdir(parents=True, exist_ok=True)
    for u in range(views.shape[0]):
        for v in range(views.shape[1]):
            Image.fromarray(views[u, v]).save(folder / f"view_{u:02d}_{v:02d}.png")


def workflow_config(source: Path, folders: dict[str, Path], downsample: int) -> dict:
    """A ``--configfile`` for the workflow: the stand-ins as scenes (folders of views), run alone."""
    scenes = {folder.name: {"path": str(folder.resolve()), "format": "folder",
                            "dataset": f"stand-in '{variant}' of {source.name} (benchmarks/standins.py, "
                                       f"{downsample}x downsampled; HCI 4D Light Field Benchmark, CC BY-NC-SA 4.0)",
                            "url": "https://lightfield-analysis.uni-konstanz.de/"}
              for variant, folder in folders.items()}
    return {"run": list(scenes), "scenes": scenes}


def lfcomp(*args: str, log: Path) -> None:
    with open(log, "w") as out:
        code = subprocess.call([sys.executable, "-m", "lfcomp.cli", *args], stdout=out, stderr=out)
    if code != 0:
        raise SystemExit(f"lfcomp {args[0]} failed: see {log}")


def fit(lf: Path, kind: str, preset: str) -> dict:
    """Train the scene model ``kind`` on the ingested stand-in ``lf`` (a zarr); its stage report."""
    import torch

    model = lf.parent / f"{lf.stem}_{kind}.pt"
    if not model.exists():
        lfcomp("train", str(lf), str(model), "--preset", preset, "--set", f"model.kind={kind}", "--threads", "1",
               "--device", "cpu", log=lf.parent / f"{lf.stem}_{kind}.log")
    return torch.load(model, weights_only=False)["report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="an HCI scene folder (input_CamNNN.png)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--views", type=int, nargs=2, default=(5, 5))
    parser.add_argument("--downsample", type=int, default=4)
    parser.add_argument("--run", action="store_true", help="ingest each stand-in and train NeRF-org and NeLF-org")
    parser.add_argument("--kinds", nargs="+", default=["nerf", "nelf"])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--configfile", type=Path, help="write a workflow config that runs the stand-ins")
    parser.add_argument("--calibrated", action="store_true",
                        help="with --run, also train each stand-in with the true disparity in place of the estimate")
    args = parser.parse_args()
    folders = {}
    for variant in args.variants:
        folder = args.out / f"{args.source.name}_{variant}"
        if not folder.exists():
            write_folder(build(args.source, variant, tuple(args.views), args.downsample), folder)
        folders[variant] = folder
        print(f"stand-in {variant}: {folder}", flush=True)
    if args.configfile:
        args.configfile.write_text(yaml.safe_dump(workflow_config(args.source, folders, args.downsample),
                                                  sort_keys=False))
        print(f"workflow config: {args.configfile}", flush=True)
    if not args.run:
        return
    truths = {variant: true_disparity(args.source, variant, args.downsample) for variant in folders}
    zarrs: dict[tuple[str, bool], Path] = {}
    for variant, folder in folders.items():  # once, before the trainings of both kinds read it
        if not folder.with_suffix(".zarr").exists():
            lfcomp("ingest", str(folder), str(folder.with_suffix(".zarr")), "--format", "folder",
                   log=folder.with_suffix(".ingest.log"))
        zarrs[variant, False] = folder.with_suffix(".zarr")
        if args.calibrated and truths[variant] is not None:
            zarrs[variant, True] = calibrated_copy(folder.with_suffix(".zarr"), truths[variant])
    # a kind whose rays do not come from the camera (nelf: (s, t, x, y)) has no calibrated run: it is its run
    tasks = [(variant, kind, calibrated) for (variant, calibrated) in zarrs for kind in args.kinds
             if not calibrated or model_kind(kind).learns_camera]
    with ThreadPoolExecutor(args.jobs) as pool:
        reports = dict(zip(tasks, pool.map(lambda task: fit(zarrs[task[0], task[2]], task[1], args.preset), tasks)))
    results = {(variant, kind): report for (variant, kind, calibrated), report in reports.items() if not calibrated}
    print(f"\n{args.source.name} stand-ins, {args.preset} preset: PSNR (RGB) of the stage report on its views\n")
    print("| stand-in | model | PSNR | centre-view floor | mean-image floor | margin over best floor | "
          "calibrated: PSNR (margin) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (variant, kind), report in results.items():
        floors = report.get("floors", {})
        centre, mean = floors.get("centre_view", {}).get("psnr_rgb"), floors.get("mean_image", {}).get("psnr_rgb")
        best = max(f for f in (centre, mean) if f is not None)
        calibrated = reports.get((variant, kind, True))
        if calibrated is not None:
            with_truth = f"{calibrated['psnr_rgb']:.2f} ({calibrated['psnr_rgb'] - best:+.2f})"
        else:
            with_truth = "(no camera)" if args.calibrated and not model_kind(kind).learns_camera else "–"
        print(f"| {variant} | {kind} | {report['psnr_rgb']:.2f} | {centre:.2f} | {mean:.2f} | "
              f"{report['psnr_rgb'] - best:+.2f} | {with_truth} |")
    print(f"\nDisparity (px per view step) estimated at ingest against the truth ({args.source.name}'s "
          "gt_disp_lowres.pfm, 2nd-98th percentiles [min, max])\n")
    print("| stand-in | estimated horizontal | estimated vertical | true horizontal (vertical: × true step) | "
          "estimated vertical step | true step |")
    print("|---|---|---|---|---:|---:|")
    import zarr

    for variant, folder in folders.items():
        calibration = zarr.open_group(str(folder.with_suffix(".zarr")), mode="r").attrs.get("calibration", {})
        truth = truths[variant]
        axes = [f"[{calibration[a][0]:.3f}, {calibration[a][1]:.3f}]" if calibration.get(a) else "–"
                for a in ("horizontal", "vertical")]
        true = (f"[{truth['range'][0]:.3f}, {truth['range'][1]:.3f}] "
                f"([{truth['min_max'][0]:.3f}, {truth['min_max'][1]:.3f}])") if truth else "–"
        step = calibration.get("vertical_step")
        estimated_step = "–" if step is None else f"{step:g}"
        true_step = "–" if truth is None else f"{truth['vertical_step']:g}"
        print(f"| {variant} | {axes[0]} | {axes[1]} | {true} | {estimated_step} | {true_step} |")


if __name__ == "__main__":
    main()

"""The ``lfcomp`` command line: one subcommand per stage, files in, one artifact out.

Every failure caused by the input (a bad file, a wrong argument) prints one line,
``lfcomp: error: <file>: <problem>``, and exits with status 2; ``--debug`` shows the traceback.
Outputs are written atomically, so a failed or interrupted command leaves no artifact behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning under contention

from lfcomp import __version__  # noqa: E402
from lfcomp.anchors import cmd_anchor, cmd_plots, cmd_report  # noqa: E402,F401  (anchors and figures)
from lfcomp.anchors import register as register_anchor_commands  # noqa: E402
from lfcomp.errors import LfcompError  # noqa: E402

log = logging.getLogger("lfcomp")


def _pair(text: str) -> tuple[float, float]:
    try:
        u, v = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected U,V (e.g. 4,4.5), got {text!r}") from None
    return u, v


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="quick", help="paper | quick | smoke (default: quick)")
    parser.add_argument("--config", help="YAML file of overrides {section: {key: value}}")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting (repeatable), e.g. --set train.steps=500")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (auto picks CUDA when present)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--log", help="append log lines to this file")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfcomp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lfcomp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="read a light field into a zarr of views")
    p.add_argument("src"), p.add_argument("out")
    p.add_argument("--format", default="auto", choices=["auto", "hci", "folder", "epfl-mat", "zarr"])
    p.add_argument("--views", type=int, nargs=2, metavar=("U", "V"), help="keep the central U×V views")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="central crop of each view")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize by area averaging")

    p = sub.add_parser("train", help="NeRF-org: train the scene model and camera")
    p.add_argument("lightfield"), p.add_argument("out")

    p = sub.add_parser("lowrank", help="LR-NeRF: low-rank training by ADMM")
    p.add_argument("checkpoint"), p.add_argument("lightfield"), p.add_argument("out")
    p.add_argument("--rank", type=int, required=True)

    p = sub.add_parser("decompose", help="TT decomposition of the low-rank weights")
    p.add_argument("checkpoint"), p.add_argument("out")
    p.add_argument("--rank", type=int, help="must match the low-rank checkpoint's rank (default: its rank)")

    p = sub.add_parser("distill", help="DLR-NeRF: slim network from TT cores, fine-tuned")
    p.add_argument("cores"), p.add_argument("lightfield"), p.add_argument("out")

    p = sub.add_parser("quantize", help="QDLR-NeRF: shared codebook + quantization-aware training")
    p.add_argument("checkpoint"), p.add_argument("lightfield"), p.add_argument("out")
    p.add_argument("--centroids", type=int, required=True, help="codebook size N (2..65536)")
    p.add_argument("--codebook", help="also write the codebook here (default: codebook.npy beside OUT)")

    p = sub.add_parser("encode", help="Huffman-coded bitstream of the quantized model")
    p.add_argument("checkpoint"), p.add_argument("out")

    p = sub.add_parser("decode", help="render views from a bitstream alone")
    p.add_argument("bitstream"), p.add_argument("out")
    p.add_argument("--views", choices=["all", "none"], default="all", help="render the whole grid (default)")
    p.add_argument("--at", type=_pair, action="append", default=[], metavar="U,V",
                   help="also render the (fractional) viewpoint at grid row U, column V (repeatable)")
    p.add_argument("--chunk-rays", type=int, default=4096)

    p = sub.add_parser("clip", help="free-viewpoint clip (GIF or MP4) rendered from a bitstream alone")
    p.add_argument("bitstream"), p.add_argument("out", help=".gif or .mp4")
    p.add_argument("--frames", type=int, default=36, help="viewpoints on a circle around the centre view")
    p.add_argument("--fps", type=float, default=12.0)

    p = sub.add_parser("evaluate", help="PSNR, bpp and model size of a decoded light field")
    p.add_argument("reference"), p.add_argument("decoded"), p.add_argument("out")
    p.add_argument("--bitstream", help="the bitstream, for bytes and bpp")
    p.add_argument("--model", help="the quantized checkpoint, for the rate point and per-stage report")
    p.add_argument("--scene", help="scene name recorded in metrics.json (default: from the directory layout)")

    p = sub.add_parser("summarize", help="rate-point tables from metrics.json files")
    p.add_argument("out_csv"), p.add_argument("out_md"), p.add_argument("metrics", nargs="+")

    register_anchor_commands(sub)
    for name, p in sub.choices.items():
        _common(p)
    return parser


def _setup(args: argparse.Namespace) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="a"))
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers[:] = handlers
    log.setLevel(logging.INFO)
    log.propagate = False
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _config(args: argparse.Namespace, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stage's settings. A later stage takes the model kind and the held-out views from its
    input artifact (``source``: checkpoint or cores attributes), not from the command line."""
    from lfcomp.config.presets import resolve_config

    if source is None:
        return resolve_config(args.preset, args.config, args.set)
    cfg = resolve_config(args.preset, args.config, args.set, kind=source["spec"]["kind"])
    cfg["train"]["holdout_views"] = source.get("holdout_views", [])
    return cfg


def _resume(args: argparse.Namespace, cfg: dict[str, Any], inputs: list[str], **extra: Any):
    """Resume state beside the output (``OUT.resume``), keyed by the stage, settings and inputs."""
    import hashlib
    import json

    from lfcomp.engine.trainer import Resume

    def identity(path: str) -> list[Any]:
        stat = Path(path).stat()
        return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

    key = json.dumps({"command": args.command, "config": cfg, "inputs": [identity(p) for p in inputs], **extra},
                     sort_keys=True, default=str)
    out = Path(args.out)
    return Resume(out.with_name(out.name + ".resume"), int(cfg["train"]["resume_every"]),
                  hashlib.sha256(key.encode()).hexdigest())


def _device(args: argparse.Namespace):
    from lfcomp.engine.trainer import resolve_device

    return resolve_device(args.device)


def cmd_ingest(args: argparse.Namespace) -> None:
    from lfcomp.io.lightfield import ingest_to_zarr

    lf = ingest_to_zarr(args.src, args.out, args.format, views=args.views, crop=args.crop, size=args.size)
    log.info("ingested %s: %d×%d views of %d×%d → %s", args.src, *lf.grid, *lf.size, args.out)


def cmd_train(args: argparse.Namespace) -> None:
    from lfcomp.engine.checkpoint import save_checkpoint
    from lfcomp.io.lightfield import read_lightfield
    from lfcomp.codecs.qdlr.train import train_nerf

    cfg, device = _config(args), _device(args)
    lf = read_lightfield(args.lightfield)
    resume = _resume(args, cfg, [args.lightfield])
    model, extras = train_nerf(lf, cfg, device, resume)
    save_checkpoint(args.out, "nerf", model, config=cfg, lightfield=args.lightfield, **extras)
    resume.remove()


def cmd_lowrank(args: argparse.Namespace) -> None:
    from lfcomp.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from lfcomp.io.lightfield import read_lightfield
    from lfcomp.codecs.qdlr.lowrank import admm_lowrank, check_rank

    ckpt = load_checkpoint(args.checkpoint, ("nerf",))
    cfg, device = _config(args, ckpt), _device(args)
    model = model_from_checkpoint(ckpt)
    check_rank(args.rank, model)
    lf = read_lightfield(args.lightfield)
    resume = _resume(args, cfg, [args.checkpoint, args.lightfield], rank=args.rank)
    model, extras = admm_lowrank(model.to(device), lf.views, args.rank, cfg["lowrank"], cfg["train"], resume)
    stages = {**ckpt["stages"], "lowrank": extras["report"]}
    save_checkpoint(args.out, "lowrank", model, config=cfg, stages=stages,
                    holdout_views=cfg["train"]["holdout_views"], **extras)
    resume.remove()


def cmd_decompose(args: argparse.Namespace) -> None:
    from lfcomp.engine.checkpoint import load_checkpoint, model_from_checkpoint
    from lfcomp.codecs.qdlr.decompose import camera_state, decompose_model, write_cores

    ckpt = load_checkpoint(args.checkpoint, ("lowrank",))
    rank = ckpt["rank"]
    if args.rank is not None and args.rank != rank:
        raise LfcompError(args.checkpoint, f"was trained for rank {rank}, not --rank {args.rank}")
    model = model_from_checkpoint(ckpt)
    layers = decompose_model(model, rank)
    write_cores(args.out, layers, {"spec": model.spec, "camera": model.camera.values(),
                                   "camera_state": camera_state(model), "rank": rank, "stages": ckpt["stages"],
                                   "holdout_views": ckpt.get("holdout_views", [])})


def cmd_distill(args: argparse.Namespace) -> None:
    from lfcomp.engine.checkpoint import save_checkpoint
    from lfcomp.codecs.qdlr.decompose import read_cores
    from lfcomp.codecs.qdlr.distill import distill, model_from_cores
    from lfcomp.io.lightfield import read_lightfield

    layers, attrs = read_cores(args.cores)
    cfg, device = _config(args, attrs), _device(args)
    model = model_from_cores(layers, attrs).to(device)
    lf = read_lightfield(args.lightfield)
    resume = _resume(args, cfg, [args.cores, args.lightfield])
    model, extras = distill(model, lf.views, cfg["distill"], cfg["train"], resume)
    stages = {**attrs["stages"], "distill": extras["report"]}
    save_checkpoint(args.out, "distill", model, config=cfg, rank=attrs["rank"], stages=stages,
                    holdout_views=cfg["train"]["holdout_views"], **extras)
    resume.remove()


def cmd_quantize(args: argparse.Namespace) -> None:
    import numpy as np

    from lfcomp.artifacts import atomic_output
    from lfcomp.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
    from lfcomp.io.lightfield import read_lightfield
    from lfcomp.codecs.qdlr.quantize import check_centroids, quantize_model

    check_centroids(args.centroids)
    ckpt = load_checkpoint(args.checkpoint, ("distill",))
    cfg, device = _config(args, ckpt), _device(args)
    model = model_from_checkpoint(ckpt).to(device)
    lf = read_lightfield(args.lightfield)
    quantized, extras = quantize_model(model, lf.views, args.centroids, cfg["quantize"], cfg["train"])
    stages = {**ckpt["stages"], "quantize": extras["report"]}
    codebook_path = Path(args.codebook) if args.codebook else Path(args.out).with_name("codebook.npy")
    with atomic_output(codebook_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, quantized.codebook.numpy())
    save_checkpoint(args.out, "quantize", model, config=cfg, rank=ckpt.get("rank"), stages=stages,
                    holdout_views=cfg["train"]["holdout_views"], quantized=quantized.to_dict(), **extras)


def cmd_encode(args: argparse.Namespace) -> None:
    from lfcomp.engine.checkpoint import load_checkpoint
    from lfcomp.codecs.qdlr.payload import CAMERA_KEYS, encode
    from lfcomp.evaluation.metrics import bits_per_pixel
    from lfcomp.codecs.qdlr.quantize import QuantizedModel

    ckpt = load_checkpoint(args.checkpoint, ("quantize",))
    camera = {k: float(ckpt["state_dict"][f"camera.{k}"]) for k in CAMERA_KEYS}
    info = encode(ckpt["spec"], camera, QuantizedModel.from_dict(ckpt["quantized"]), args.out)
    bpp = bits_per_pixel(info["bytes"], ckpt["spec"]["grid"], ckpt["spec"]["size"])
    log.info("bitstream %s: %d bytes (%.5f bpp); sections %s", args.out, info["bytes"], bpp, info["sections"])


def cmd_decode(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.payload import decode_to_zarr

    info = decode_to_zarr(args.bitstream, args.out, grid_views=args.views == "all", free_positions=args.at,
                          device=_device(args), chunk_rays=args.chunk_rays)
    log.info("decoded %s (%d bytes): grid %s, %d free viewpoints → %s", args.bitstream, info["bytes"],
             info["grid"] if args.views == "all" else "skipped", info["free_views"], args.out)


def cmd_clip(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.payload import render_clip

    if args.frames < 1:
        raise LfcompError("--frames", f"need at least one frame, got {args.frames}")
    positions = render_clip(args.bitstream, args.out, args.frames, args.fps, device=_device(args))
    log.info("clip %s: %d viewpoints on a circle through (u, v) %s ... → %s", args.bitstream, len(positions),
             tuple(round(x, 2) for x in positions[0]), args.out)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.evaluate import evaluate_lightfield, write_metrics

    metrics = evaluate_lightfield(args.reference, args.decoded, args.bitstream, args.model, scene=args.scene)
    write_metrics(metrics, args.out)
    log.info("PSNR %.3f dB RGB, %.3f dB Y%s", metrics["psnr_rgb"] or float("inf"), metrics["psnr_y"] or float("inf"),
             f", {metrics['bytes']} bytes, {metrics['bpp']:.5f} bpp" if "bytes" in metrics else "")


def cmd_summarize(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.summary import summarize

    summarize([Path(p) for p in args.metrics], Path(args.out_csv), Path(args.out_md))


COMMANDS = {name[4:]: fn for name, fn in globals().items() if name.startswith("cmd_")}


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (Snakemake, a SLURM time limit): a training loop stops after its step and saves its
    resume state; anything else stops at once. Either way atomic outputs are cleaned up."""
    training = sys.modules.get("lfcomp.engine.trainer")
    if training is None or not training.request_stop():
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        _setup(args)
        start = time.perf_counter()
        COMMANDS[args.command](args)
        log.info("%s done in %.1f s", args.command, time.perf_counter() - start)
    except LfcompError as exc:
        if args.debug:
            raise
        print(f"lfcomp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lfcomp: interrupted (no output written)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The codec-independent subcommands: ingest, decode, clip, evaluate, the anchors and the reports."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lfcomp.cli.options import DEVICE, THREADS, Command, device_of, pair
from lfcomp.codecs.limits import DEFAULT_LIMITS, GIB, DecodeLimits
from lfcomp.errors import LfcompError

__all__ = ["DECODING", "EVALUATION", "INGEST"]

log = logging.getLogger("lfcomp")


def _ingest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src"), p.add_argument("out")
    p.add_argument("--format", default="auto", choices=["auto", "hci", "folder", "epfl-mat", "zarr"])
    p.add_argument("--views", type=int, nargs=2, metavar=("U", "V"), help="keep the central U×V views")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="central crop of each view")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize by area averaging")


def ingest(args: argparse.Namespace) -> None:
    from lfcomp.io.lightfield import ingest_to_zarr

    lf = ingest_to_zarr(args.src, args.out, args.format, views=args.views, crop=args.crop, size=args.size)
    log.info("ingested %s: %d×%d views of %d×%d → %s", args.src, *lf.grid, *lf.size, args.out)


def _limit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", type=float, default=DEFAULT_LIMITS.max_memory / GIB, metavar="GIB",
                   help="refuse a bitstream whose decode would need more memory (default %(default)g GiB)")
    p.add_argument("--max-tmac", type=float, default=DEFAULT_LIMITS.max_macs / 1e12, metavar="TMAC",
                   help="refuse a bitstream whose decode would need more network evaluations (default %(default)g)")


def limits_of(args: argparse.Namespace) -> DecodeLimits:
    if not (args.max_memory > 0 and args.max_tmac > 0):
        raise LfcompError("--max-memory/--max-tmac", "limits must be positive")
    if getattr(args, "chunk_rays", 1) < 1:
        raise LfcompError("--chunk-rays", f"must be at least 1, got {args.chunk_rays}")
    return DecodeLimits(max_memory=int(args.max_memory * GIB), max_pixels=DEFAULT_LIMITS.max_pixels,
                        max_macs=args.max_tmac * 1e12, max_file_bytes=DEFAULT_LIMITS.max_file_bytes)


def _decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bitstream"), p.add_argument("out")
    p.add_argument("--views", choices=["all", "none"], default="all", help="render the whole grid (default)")
    p.add_argument("--at", type=pair, action="append", default=[], metavar="U,V",
                   help="also render the (fractional) viewpoint at grid row U, column V (repeatable)")
    p.add_argument("--chunk-rays", type=int, default=4096)
    _limit_arguments(p)


def decode(args: argparse.Namespace) -> None:
    from lfcomp.codecs.decoder import decode_to_zarr

    info = decode_to_zarr(args.bitstream, args.out, grid_views=args.views == "all", free_positions=args.at,
                          device=device_of(args), chunk_rays=args.chunk_rays, limits=limits_of(args))
    log.info("decoded %s (%d bytes): grid %s, %d free viewpoints → %s", args.bitstream, info["bytes"],
             info["grid"] if args.views == "all" else "skipped", info["free_views"], args.out)


def _clip_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bitstream"), p.add_argument("out", help=".gif or .mp4")
    p.add_argument("--frames", type=int, default=36, help="viewpoints on a circle around the centre view")
    p.add_argument("--fps", type=float, default=12.0)
    _limit_arguments(p)


def clip(args: argparse.Namespace) -> None:
    from lfcomp.codecs.decoder import render_clip

    if args.frames < 1:
        raise LfcompError("--frames", f"need at least one frame, got {args.frames}")
    positions = render_clip(args.bitstream, args.out, args.frames, args.fps, device=device_of(args),
                            limits=limits_of(args))
    log.info("clip %s: %d viewpoints on a circle through (u, v) %s ... → %s", args.bitstream, len(positions),
             tuple(round(x, 2) for x in positions[0]), args.out)


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference"), p.add_argument("decoded"), p.add_argument("out")
    p.add_argument("--bitstream", help="the bitstream, for bytes and bpp")
    p.add_argument("--model", help="the quantized checkpoint, for the rate point and per-stage report")
    p.add_argument("--scene", help="scene name recorded in metrics.json (default: from the directory layout)")
    p.add_argument("--target-bpp", type=float, metavar="BPP",
                   help="the rate this point was made for, recorded beside the achieved bpp")


def evaluate(args: argparse.Namespace) -> None:
    from lfcomp.codecs.targets import check_target_bpp
    from lfcomp.evaluation.evaluate import evaluate_lightfield, write_metrics

    if args.target_bpp is not None:
        check_target_bpp(args.target_bpp, "--target-bpp")
    metrics = evaluate_lightfield(args.reference, args.decoded, args.bitstream, args.model, scene=args.scene,
                                  target_bpp=args.target_bpp)
    write_metrics(metrics, args.out)
    target = (f" (target {metrics['target_bpp']:.5f}, {metrics['target_error']:+.2%})"
              if "target_error" in metrics else "")
    log.info("PSNR %.3f dB RGB, %.3f dB Y%s", metrics["psnr_rgb"] or float("inf"), metrics["psnr_y"] or float("inf"),
             f", {metrics['bytes']} bytes, {metrics['bpp']:.5f} bpp{target}" if "bytes" in metrics else "")


def _summarize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_csv"), p.add_argument("out_md"), p.add_argument("metrics", nargs="+")


def summarize(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.summary import summarize as write_summary

    write_summary([Path(p) for p in args.metrics], Path(args.out_csv), Path(args.out_md))


def _anchor_arguments(p: argparse.ArgumentParser) -> None:
    from lfcomp.anchors.colour import CHROMAS
    from lfcomp.anchors.pvs import ANCHOR_SCANS
    from lfcomp.anchors.video import CODECS

    p.add_argument("reference", help="light field zarr (from lfcomp ingest)")
    p.add_argument("out", help="directory for bitstream.<ext>, decoded.zarr and metrics.json")
    p.add_argument("--codec", choices=list(CODECS), default="hevc", help="hevc (x265), h264 (x264), av1 (SVT-AV1)")
    p.add_argument("--chroma", choices=list(CHROMAS), default="444", help="chroma format (av1: 420 only)")
    p.add_argument("--qp", type=int, required=True, help="constant QP (hevc/h264: 0..51, av1: 1..63)")
    p.add_argument("--scan", choices=list(ANCHOR_SCANS), default="serpentine",
                   help="view order of the sequence; centre: the centre view alone, copied to every view (a floor)")
    p.add_argument("--encoder-preset", help="encoder speed preset (default: medium; av1: 8)")
    p.add_argument("--scene", help="scene name recorded in metrics.json (default: from the directory layout)")


def anchor(args: argparse.Namespace) -> None:
    from lfcomp.anchors.video import anchor as code_anchor

    m = code_anchor(args.reference, args.out, codec=args.codec, chroma=args.chroma, qp=args.qp, scan=args.scan,
                    preset=args.encoder_preset, scene=args.scene)
    log.info("%s QP %d (%s scan): %d bytes, %.5f bpp, PSNR %s dB RGB, %s dB Y; encode %.2f s, decode %.2f s → %s",
             m["anchor"], m["qp"], m["scan"], m["bytes"], m["bpp"], m["psnr_rgb"], m["psnr_y"],
             m["encode_seconds"], m["decode_seconds"], args.out)


def _bpp_range(args: argparse.Namespace) -> tuple[float, float]:
    if not (args.min_bpp >= 0 and args.max_bpp > args.min_bpp):
        raise LfcompError("--min-bpp/--max-bpp", f"need 0 ≤ min < max, got {args.min_bpp} and {args.max_bpp}")
    return args.min_bpp, args.max_bpp


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="directory for the tables (e.g. results/summary)")
    p.add_argument("metrics", nargs="+", help="metrics.json of every codec and rate point")
    p.add_argument("--anchors", nargs="+", default=["hevc444", "hevc420"], help="BD reference codecs")
    p.add_argument("--min-bpp", type=float, default=0.0, help="BD rate range, low end (default 0)")
    p.add_argument("--max-bpp", type=float, default=0.2, help="BD rate range, high end (default 0.2)")


def report(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.report import build_report

    paths = build_report(args.metrics, args.out, anchors=tuple(args.anchors), rate_range=_bpp_range(args))
    log.info("report: %d metrics → %s", len(args.metrics), ", ".join(str(p) for p in paths.values()))


def _plots_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="directory for the figures")
    p.add_argument("metrics", nargs="+", help="metrics.json of every codec and rate point")
    p.add_argument("--reference-codec", help="codec whose rate point the others are matched to "
                                             "(default: the first neural codec, else hevc444)")
    p.add_argument("--view-codecs", nargs="+", help="codecs beside it in the per-view figure (default: the other "
                                                       "neural codecs and hevc*)")
    p.add_argument("--target-bpp", type=float, help="pick the reference codec's point nearest this bpp "
                                                    "(default: its median point)")
    p.add_argument("--min-bpp", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--max-bpp", type=float, default=0.2, help="marked on the RD plots (default 0.2)")
    p.add_argument("--no-error-maps", action="store_true", help="skip the error maps (they read decoded.zarr)")


def plots(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.plots import make_figures

    written = make_figures(args.metrics, args.out, reference_codec=args.reference_codec,
                           view_codecs=tuple(args.view_codecs) if args.view_codecs else None,
                           target_bpp=args.target_bpp, rate_range=_bpp_range(args), error_maps=not args.no_error_maps)
    log.info("plots: %d files → %s", len(written), args.out)


INGEST = Command("ingest", "read a light field into a zarr of views", _ingest_arguments, ingest, (THREADS,))
DECODING: tuple[Command, ...] = (
    Command("decode", "render views from a bitstream alone (any codec)", _decode_arguments, decode, (DEVICE,)),
    Command("clip", "free-viewpoint clip (GIF or MP4) rendered from a bitstream alone", _clip_arguments, clip,
            (DEVICE,)),
)
EVALUATION: tuple[Command, ...] = (
    Command("evaluate", "PSNR, bpp and model size of a decoded light field", _evaluate_arguments, evaluate),
    Command("summarize", "rate-point tables from metrics.json files", _summarize_arguments, summarize),
    Command("anchor", "video-codec anchor: code a light field as a pseudo-video sequence", _anchor_arguments, anchor),
    Command("report", "rd.csv, bd_psnr.csv/.md and stages.csv/.md from metrics.json files", _report_arguments,
            report),
    Command("plots", "RD curves, per-view PSNR and error-map figures (PNG and SVG)", _plots_arguments, plots),
)

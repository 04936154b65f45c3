"""Classical anchors: light fields coded as pseudo-video sequences with HEVC, H.264 and AV1.

``lfcomp.anchors.pvs`` (scan orders), ``lfcomp.anchors.colour`` (RGB ↔ full-range BT.601
Y'CbCr) and ``lfcomp.anchors.video`` (encode, decode and the ``anchor`` rate point).

``register(subparsers)`` adds the ``anchor``, ``report`` and ``plots`` subcommands to the
``lfcomp`` command line and returns their handlers by name (for ``lfcomp.cli.COMMANDS``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

log = logging.getLogger("lfcomp")


def _bpp_range(args: argparse.Namespace) -> tuple[float, float]:
    from lfcomp.errors import LfcompError

    if not (args.min_bpp >= 0 and args.max_bpp > args.min_bpp):
        raise LfcompError("--min-bpp/--max-bpp", f"need 0 ≤ min < max, got {args.min_bpp} and {args.max_bpp}")
    return args.min_bpp, args.max_bpp


def cmd_anchor(args: argparse.Namespace) -> None:
    from lfcomp.anchors.video import anchor

    m = anchor(args.reference, args.out, codec=args.codec, chroma=args.chroma, qp=args.qp, scan=args.scan,
               preset=args.encoder_preset, scene=args.scene)
    log.info("%s QP %d (%s scan): %d bytes, %.5f bpp, PSNR %s dB RGB, %s dB Y; encode %.2f s, decode %.2f s → %s",
             m["anchor"], m["qp"], m["scan"], m["bytes"], m["bpp"], m["psnr_rgb"], m["psnr_y"],
             m["encode_seconds"], m["decode_seconds"], args.out)


def cmd_report(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.report import build_report

    paths = build_report(args.metrics, args.out, anchors=tuple(args.anchors), rate_range=_bpp_range(args))
    log.info("report: %d metrics → %s", len(args.metrics), ", ".join(str(p) for p in paths.values()))


def cmd_plots(args: argparse.Namespace) -> None:
    from lfcomp.evaluation.plots import make_figures

    written = make_figures(args.metrics, args.out, reference_codec=args.reference_codec,
                           view_codecs=tuple(args.view_codecs) if args.view_codecs else None,
                           target_bpp=args.target_bpp, rate_range=_bpp_range(args), error_maps=not args.no_error_maps)
    log.info("plots: %d files → %s", len(written), args.out)


def register(subparsers: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], None]]:
    """Add ``anchor``, ``report`` and ``plots`` to ``subparsers``; returns {name: handler}."""
    from lfcomp.anchors.colour import CHROMAS
    from lfcomp.anchors.pvs import SCANS
    from lfcomp.anchors.video import CODECS

    p = subparsers.add_parser("anchor", help="video-codec anchor: code a light field as a pseudo-video sequence")
    p.add_argument("reference", help="light field zarr (from lfcomp ingest)")
    p.add_argument("out", help="directory for bitstream.<ext>, decoded.zarr and metrics.json")
    p.add_argument("--codec", choices=list(CODECS), default="hevc", help="hevc (x265), h264 (x264), av1 (SVT-AV1)")
    p.add_argument("--chroma", choices=list(CHROMAS), default="444", help="chroma format (av1: 420 only)")
    p.add_argument("--qp", type=int, required=True, help="constant QP (hevc/h264: 0..51, av1: 1..63)")
    p.add_argument("--scan", choices=list(SCANS), default="serpentine", help="view order of the sequence")
    p.add_argument("--encoder-preset", help="encoder speed preset (default: medium; av1: 8)")
    p.add_argument("--scene", help="scene name recorded in metrics.json (default: from the directory layout)")

    p = subparsers.add_parser("report", help="rd.csv, bd_psnr.csv/.md and stages.csv/.md from metrics.json files")
    p.add_argument("out", help="directory for the tables (e.g. results/summary)")
    p.add_argument("metrics", nargs="+", help="metrics.json of every codec and rate point")
    p.add_argument("--anchors", nargs="+", default=["hevc444", "hevc420"], help="BD reference codecs")
    p.add_argument("--min-bpp", type=float, default=0.0, help="BD rate range, low end (default 0)")
    p.add_argument("--max-bpp", type=float, default=0.2, help="BD rate range, high end (default 0.2)")

    p = subparsers.add_parser("plots", help="RD curves, per-view PSNR and error-map figures (PNG and SVG)")
    p.add_argument("out", help="directory for the figures")
    p.add_argument("metrics", nargs="+", help="metrics.json of every codec and rate point")
    p.add_argument("--reference-codec", help="codec whose rate point the others are matched to "
                                             "(default: qdlr-nerf, else another neural codec, else hevc444)")
    p.add_argument("--view-codecs", nargs="+", help="codecs beside it in the per-view figure (default: the other neural "
                                                       "codecs and hevc*)")
    p.add_argument("--target-bpp", type=float, help="pick the reference codec's point nearest this bpp "
                                                    "(default: its median point)")
    p.add_argument("--min-bpp", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--max-bpp", type=float, default=0.2, help="marked on the RD plots (default 0.2)")
    p.add_argument("--no-error-maps", action="store_true", help="skip the error maps (they read decoded.zarr)")
    return {"anchor": cmd_anchor, "report": cmd_report, "plots": cmd_plots}


__all__ = ["register"]

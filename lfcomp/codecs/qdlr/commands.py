"""The QDLR codec's stages as ``lfcomp`` subcommands: files in, one artifact out.

train (NeRF-org) → lowrank (LR) → decompose (TT cores) → distill (DLR) → quantize (QDLR) → encode.
Decoding is the codec-independent ``lfcomp decode``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lfcomp.cli.options import CONFIG, DEVICE, Command, add_rate_arguments, config_of, device_of, resume_of, target_of
from lfcomp.errors import LfcompError

__all__ = ["COMMANDS"]

log = logging.getLogger("lfcomp")


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("lightfield"), p.add_argument("out")


def train(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.train import train_nerf
    from lfcomp.engine.checkpoint import save_checkpoint
    from lfcomp.io.lightfield import read_lightfield

    cfg, device = config_of(args), device_of(args)
    lf = read_lightfield(args.lightfield)
    resume = resume_of(args, cfg, [args.lightfield])
    model, extras = train_nerf(lf, cfg, device, resume)
    save_checkpoint(args.out, "nerf", model, config=cfg.to_dict(), lightfield=args.lightfield, **extras)
    resume.remove()


def _lowrank_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint"), p.add_argument("lightfield"), p.add_argument("out")
    add_rate_arguments(p, "rank", int, "rank of the low-rank layers (with a target: planned from the architecture, "
                                       "lfcomp.codecs.qdlr.rate_model)")


def lowrank(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.lowrank import admm_lowrank, check_rank
    from lfcomp.codecs.qdlr.rate_model import rank_for_target
    from lfcomp.engine.checkpoint import (check_lightfield_matches, load_checkpoint, model_from_checkpoint,
                                          save_checkpoint)
    from lfcomp.io.lightfield import read_lightfield

    ckpt = load_checkpoint(args.checkpoint, ("nerf",))
    cfg, device = config_of(args, ckpt), device_of(args)
    model = model_from_checkpoint(ckpt)
    lf = read_lightfield(args.lightfield)
    check_lightfield_matches(ckpt, args.checkpoint, lf, args.lightfield)
    target, rank, plan = target_of(args, lf.grid, lf.size), args.rank, {}
    if target is not None:
        point = rank_for_target(model.spec, target)
        rank = point.rank
        plan = {"target": {"bpp": target.bpp, "fit": target.fit, "rank": rank, "centroids": point.centroids,
                           "predicted_bytes": point.predicted.bytes, "reachable": point.feasible}}
        log.info("target %.5f bpp (%s): rank %d, with %d centroids %d bytes predicted (%.5f bpp)%s", target.bpp,
                 target.fit, rank, point.centroids, point.predicted.bytes, point.predicted.bpp,
                 "" if point.feasible else " — the nearest this architecture reaches")
    check_rank(rank, model)
    resume = resume_of(args, cfg, [args.checkpoint, args.lightfield], rank=rank)
    model, extras = admm_lowrank(model.to(device), lf.views, rank, cfg.lowrank, cfg.train, resume)
    stages = {**ckpt["stages"], "lowrank": extras["report"]}
    save_checkpoint(args.out, "lowrank", model, config=cfg.to_dict(), stages=stages,
                    holdout_views=ckpt.get("holdout_views", []), **extras, **plan)
    resume.remove()


def _decompose_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint"), p.add_argument("out")
    p.add_argument("--rank", type=int, help="must match the low-rank checkpoint's rank (default: its rank)")


def decompose(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.decompose import camera_state, decompose_model, write_cores
    from lfcomp.engine.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(args.checkpoint, ("lowrank",))
    rank = ckpt["rank"]
    if args.rank is not None and args.rank != rank:
        raise LfcompError(args.checkpoint, f"was trained for rank {rank}, not --rank {args.rank}")
    model = model_from_checkpoint(ckpt)
    layers = decompose_model(model, rank)
    write_cores(args.out, layers, {"spec": model.spec, "camera": model.camera.values(),
                                   "camera_state": camera_state(model), "rank": rank, "stages": ckpt["stages"],
                                   "holdout_views": ckpt.get("holdout_views", [])})


def _distill_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cores"), p.add_argument("lightfield"), p.add_argument("out")


def distill(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.decompose import read_cores
    from lfcomp.codecs.qdlr.distill import distill as distill_model
    from lfcomp.codecs.qdlr.distill import model_from_cores
    from lfcomp.engine.checkpoint import check_lightfield_matches, save_checkpoint
    from lfcomp.io.lightfield import read_lightfield

    layers, attrs = read_cores(args.cores)
    cfg, device = config_of(args, attrs), device_of(args)
    model = model_from_cores(layers, attrs).to(device)
    lf = read_lightfield(args.lightfield)
    check_lightfield_matches(attrs, args.cores, lf, args.lightfield)
    resume = resume_of(args, cfg, [args.cores, args.lightfield])
    model, extras = distill_model(model, lf.views, cfg.distill, cfg.train, resume)
    stages = {**attrs["stages"], "distill": extras["report"]}
    save_checkpoint(args.out, "distill", model, config=cfg.to_dict(), rank=attrs["rank"], stages=stages,
                    holdout_views=attrs.get("holdout_views", []), **extras)
    resume.remove()


def _quantize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint"), p.add_argument("lightfield"), p.add_argument("out")
    add_rate_arguments(p, "centroids", int, "codebook size N (2..65536; with a target: the N of "
                                            "rate_model.CENTROID_CHOICES that meets it best)")
    p.add_argument("--codebook", help="also write the codebook here (default: codebook.npy beside OUT)")


def quantize(args: argparse.Namespace) -> None:
    import numpy as np

    from lfcomp.artifacts import atomic_output
    from lfcomp.codecs.qdlr.quantize import check_centroids, quantize_model
    from lfcomp.codecs.qdlr.rate_model import centroids_for_target
    from lfcomp.engine.checkpoint import (check_lightfield_matches, load_checkpoint, model_from_checkpoint,
                                          save_checkpoint)
    from lfcomp.io.lightfield import read_lightfield

    if args.centroids is not None:
        check_centroids(args.centroids)
    ckpt = load_checkpoint(args.checkpoint, ("distill",))
    cfg, device = config_of(args, ckpt), device_of(args)
    model = model_from_checkpoint(ckpt).to(device)
    lf = read_lightfield(args.lightfield)
    check_lightfield_matches(ckpt, args.checkpoint, lf, args.lightfield)
    target, centroids = target_of(args, lf.grid, lf.size), args.centroids
    if target is not None:
        chosen = centroids_for_target(model.spec, ckpt["rank"], target)
        centroids = chosen.centroids
        log.info("target %.5f bpp (%s): %d centroids, %d bytes predicted (%.5f bpp, %+.1f %%)", target.bpp, target.fit,
                 centroids, chosen.bytes, chosen.bpp, 100 * target.error(chosen.bytes))
    quantized, extras = quantize_model(model, lf.views, centroids, cfg.quantize, cfg.train)
    stages = {**ckpt["stages"], "quantize": extras["report"]}
    codebook_path = Path(args.codebook) if args.codebook else Path(args.out).with_name("codebook.npy")
    with atomic_output(codebook_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, quantized.codebook.numpy())
    save_checkpoint(args.out, "quantize", model, config=cfg.to_dict(), rank=ckpt.get("rank"), stages=stages,
                    holdout_views=ckpt.get("holdout_views", []), quantized=quantized.to_dict(), **extras)


def _encode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint"), p.add_argument("out")


def encode(args: argparse.Namespace) -> None:
    from lfcomp.codecs.qdlr.payload import CAMERA_KEYS
    from lfcomp.codecs.qdlr.payload import encode as encode_bitstream
    from lfcomp.codecs.qdlr.quantize import QuantizedModel
    from lfcomp.engine.checkpoint import load_checkpoint
    from lfcomp.evaluation.metrics import bits_per_pixel

    ckpt = load_checkpoint(args.checkpoint, ("quantize",))
    camera = {k: float(ckpt["state_dict"][f"camera.{k}"]) for k in CAMERA_KEYS}
    info = encode_bitstream(ckpt["spec"], camera, QuantizedModel.from_dict(ckpt["quantized"]), args.out)
    bpp = bits_per_pixel(info["bytes"], ckpt["spec"]["grid"], ckpt["spec"]["size"])
    log.info("bitstream %s: %d bytes (%.5f bpp); sections %s", args.out, info["bytes"], bpp, info["sections"])


COMMANDS: tuple[Command, ...] = (
    Command("train", "NeRF-org: train the scene model and camera", _train_arguments, train, (CONFIG, DEVICE)),
    Command("lowrank", "LR-NeRF: low-rank training by ADMM", _lowrank_arguments, lowrank, (CONFIG, DEVICE)),
    Command("decompose", "TT decomposition of the low-rank weights", _decompose_arguments, decompose),
    Command("distill", "DLR-NeRF: slim network from TT cores, fine-tuned", _distill_arguments, distill,
            (CONFIG, DEVICE)),
    Command("quantize", "QDLR-NeRF: shared codebook + quantization-aware training", _quantize_arguments, quantize,
            (CONFIG, DEVICE)),
    Command("encode", "Huffman-coded bitstream of the quantized model", _encode_arguments, encode),
)

"""The latent codec's stages as ``lfcomp`` subcommands: ``latent-fit`` (train at one λ) and
``latent-encode`` (the bitstream). Decoding is the codec-independent ``lfcomp decode``."""

from __future__ import annotations

import argparse
import logging

from lfcomp.cli.options import CONFIG, DEVICE, Command, add_rate_arguments, config_of, device_of, resume_of, target_of

__all__ = ["COMMANDS", "STAGE"]

log = logging.getLogger("lfcomp")
STAGE = "latent"  # the stage tag of its checkpoints


def _fit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("lightfield"), p.add_argument("out")
    add_rate_arguments(p, "lmbda", float, "rate point: loss = MSE + λ · bits per pixel (with a target, λ is "
                                          "searched: at most latent.target_trials trainings)")
    p.add_argument("--init", help="start from this checkpoint of a neighbouring rate point (warm start, fewer steps)")


def fit(args: argparse.Namespace) -> None:
    import torch

    from lfcomp.artifacts import atomic_output
    from lfcomp.codecs.latent.checkpoint import check_init
    from lfcomp.codecs.latent.fit import fit_latent, geometry_for
    from lfcomp.codecs.latent.rate_control import fit_to_target
    from lfcomp.engine.checkpoint import FORMAT, load_checkpoint
    from lfcomp.errors import LfcompError
    from lfcomp.io.lightfield import read_lightfield

    if args.lmbda is not None and not args.lmbda > 0:
        raise LfcompError("--lmbda", f"λ must be positive, got {args.lmbda}")
    cfg, device = config_of(args), device_of(args)
    lf = read_lightfield(args.lightfield)
    init = load_checkpoint(args.init, (STAGE,)) if args.init else None
    if init is not None:
        check_init(init, args.init, geometry_for(lf.grid, lf.size, cfg), cfg.latent.arm_hidden)
    if args.lmbda is not None:
        resume = resume_of(args, cfg, [args.lightfield, *([args.init] if args.init else [])], lmbda=args.lmbda)
        model, extras = fit_latent(lf.views, args.lmbda, cfg, device, init, resume)
        extras["lmbda"] = args.lmbda
    else:  # a search of several short trainings: restarted as a whole, without resume state
        model, extras = fit_to_target(lf.views, target_of(args, lf.grid, lf.size), cfg, device, init)
        resume = None
    report = extras["report"]
    report["network_params"] = sum(p.numel() for p in (*model.field.synthesis.parameters(), *model.arm.parameters()))
    payload = {"format": FORMAT, "stage": STAGE, "codec": "latent", "config": cfg.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "holdout_views": [list(p) for p in cfg.train.holdout_views], **extras}
    with atomic_output(args.out) as tmp:
        torch.save(payload, tmp)
    if resume is not None:
        resume.remove()


def _encode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint"), p.add_argument("lightfield", help="the views, to choose the weights' quantisation step")
    p.add_argument("out")


def encode(args: argparse.Namespace) -> None:
    import numpy as np

    from lfcomp.bitstream.container import decode_payload, encode_payload, write_bitstream
    from lfcomp.codecs.latent.checkpoint import model_from_checkpoint
    from lfcomp.codecs.latent.fit import render_views
    from lfcomp.codecs.latent.payload import encode_model, model_from_payload
    from lfcomp.engine.checkpoint import load_checkpoint
    from lfcomp.errors import LfcompError
    from lfcomp.evaluation.metrics import bits_per_pixel
    from lfcomp.io.lightfield import read_lightfield

    ckpt = load_checkpoint(args.checkpoint, (STAGE,))
    model = model_from_checkpoint(ckpt, args.checkpoint)
    geometry = model.geometry
    lf = read_lightfield(args.lightfield)
    if lf.grid != geometry.grid or lf.size != geometry.size:
        raise LfcompError(args.lightfield, "has {}x{} views of {}x{} px, but {} was fitted to {}x{} views of {}x{} px"
                          .format(*lf.grid, *lf.size, args.checkpoint, *geometry.grid, *geometry.size))
    payload, reference = encode_model(model, lf.views, ckpt["lmbda"])
    data = encode_payload(payload)
    decoded = model_from_payload(decode_payload(data, args.out), args.out)
    grid = [(float(u), float(v)) for u in range(geometry.grid[0]) for v in range(geometry.grid[1])]
    if not np.array_equal(render_views(decoded, grid), render_views(reference, grid)):
        raise RuntimeError("internal error: the bitstream does not decode to the encoder's reconstruction")
    write_bitstream(data, args.out)
    log.info("bitstream %s: %d bytes (%.5f bpp), synthesis step 2^-%d, %d MAC/pixel", args.out, len(data),
             bits_per_pixel(len(data), geometry.grid, geometry.size), payload.header["synthesis_log2_step"],
             reference.field.macs_per_pixel())


COMMANDS: tuple[Command, ...] = (
    Command("latent-fit", "latent codec: train latents, synthesis and entropy model at one λ or target bitrate", _fit_arguments, fit,
            (CONFIG, DEVICE)),
    Command("latent-encode", "latent codec: range-coded bitstream of a trained model", _encode_arguments, encode),
)

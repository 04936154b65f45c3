"""What a subcommand of ``lfcomp`` is, and the option groups subcommands share.

A ``Command`` names its arguments and its handler, and which shared groups it takes: ``config``
(``--preset``, ``--config``, ``--set``: the stage's parameters), ``device`` (``--device``,
``--threads``), ``threads`` (``--threads`` alone: a CPU command that uses torch). Every command takes
``--log`` and ``--debug``. A command gets only what it uses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from lfcomp.codecs.targets import RateTarget
    from lfcomp.config import Config
    from lfcomp.engine.resume import Resume

__all__ = ["CONFIG", "DEVICE", "THREADS", "Command", "add_rate_arguments", "config_of", "device_of", "pair", "resume_of",
           "target_of"]

CONFIG, DEVICE, THREADS = "config", "device", "threads"


@dataclass(frozen=True)
class Command:
    """One ``lfcomp`` subcommand: its arguments, its handler and the shared option groups it takes."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    groups: tuple[str, ...] = ()


def add_groups(parser: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    if CONFIG in groups:
        parser.add_argument("--preset", default="quick", help="paper | quick | smoke (default: quick)")
        parser.add_argument("--config", help="YAML file of overrides {section: {key: value}}")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override one setting (repeatable), e.g. --set train.steps=500")
    if DEVICE in groups:
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda (auto picks CUDA when present)")
    if DEVICE in groups or THREADS in groups:
        parser.add_argument("--threads", type=positive_int, help="torch CPU threads: the cores the job was given "
                            "(default: all)")
    parser.add_argument("--log", help="append log lines to this file")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def pair(text: str) -> tuple[float, float]:
    """``U,V`` → (u, v), for fractional viewpoints."""
    try:
        u, v = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected U,V (e.g. 4,4.5), got {text!r}") from None
    return u, v


def add_rate_arguments(p: argparse.ArgumentParser, explicit: str, explicit_type: type, explicit_help: str) -> None:
    """A rate point: the codec's own parameter (``--rank``, ``--centroids``, ``--lmbda``) or a target
    bitrate, ``--target-bpp`` or ``--target-bytes``, with ``--fit``."""
    from lfcomp.codecs.targets import FITS

    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument(f"--{explicit}", type=explicit_type, help=explicit_help)
    rate.add_argument("--target-bpp", type=float, help="or a target bitrate, bits per pixel of the light field")
    rate.add_argument("--target-bytes", type=int, help="or a target bitstream size in bytes")
    p.add_argument("--fit", choices=FITS, default="closest",
                   help="with a target: the closest rate (default) or the largest not above the target")


def target_of(args: argparse.Namespace, grid: tuple[int, int], size: tuple[int, int]) -> RateTarget | None:
    """The target of ``add_rate_arguments`` for a light field of ``grid`` views of ``size`` px; None
    when the explicit parameter was given."""
    from lfcomp.codecs.targets import RateTarget, check_target_bpp, pixels_of

    if args.target_bytes is not None:
        return RateTarget.from_bytes(args.target_bytes, pixels_of(grid, size), args.fit)
    if args.target_bpp is not None:
        return RateTarget(check_target_bpp(args.target_bpp), pixels_of(grid, size), args.fit)
    return None


def config_of(args: argparse.Namespace, source: dict[str, Any] | None = None) -> Config:
    """The stage's settings. A later stage takes the model kind and the held-out views from its
    input artifact (``source``: checkpoint or cores attributes), not from the command line."""
    from dataclasses import replace

    from lfcomp.config import resolve_config

    if source is None:
        return resolve_config(args.preset, args.config, args.set)
    cfg = resolve_config(args.preset, args.config, args.set, kind=source["spec"]["kind"])
    holdout = tuple(tuple(int(i) for i in p) for p in source.get("holdout_views", []))
    return replace(cfg, train=replace(cfg.train, holdout_views=holdout))


def device_of(args: argparse.Namespace) -> torch.device:
    from lfcomp.engine.device import resolve_device

    return resolve_device(args.device)


def resume_of(args: argparse.Namespace, cfg: Config, inputs: list[str], **extra: Any) -> Resume:
    """Resume state beside the output (``OUT.resume``), keyed by the stage, settings and inputs."""
    from lfcomp.engine.resume import Resume

    def identity(path: str) -> list[Any]:
        stat = Path(path).stat()
        return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]

    key = json.dumps({"command": args.command, "config": cfg.to_dict(), "inputs": [identity(p) for p in inputs],
                      **extra}, sort_keys=True, default=str)
    out = Path(args.out)
    return Resume(out.with_name(out.name + ".resume"), int(cfg.train.resume_every),
                  hashlib.sha256(key.encode()).hexdigest())

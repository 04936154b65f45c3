"""The ``lfcomp`` command line: one subcommand per stage, files in, one artifact out.

Every failure caused by the input (a bad file, a wrong argument) prints one line,
``lfcomp: error: <file>: <problem>``, and exits with status 2; ``--debug`` shows the traceback.
Outputs are written atomically, so a failed or interrupted command leaves no artifact behind.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from lfcomp import __version__
from lfcomp.cli import commands
from lfcomp.cli.options import Command, add_groups
from lfcomp.codecs.registry import CODECS
from lfcomp.engine.memory import keep_freed_memory
from lfcomp.errors import LfcompError

__all__ = ["build_parser", "command_table", "main"]

log = logging.getLogger("lfcomp")


def command_table() -> dict[str, Command]:
    """Every subcommand, in help order: ingest, each registered codec's stages, decoding, evaluation."""
    table = [commands.INGEST]
    for codec in CODECS.values():
        table += importlib.import_module(f"{codec.package}.commands").COMMANDS
    table += [*commands.DECODING, *commands.EVALUATION]
    return {command.name: command for command in table}


def build_parser(table: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfcomp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lfcomp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (table or command_table()).values():
        p = sub.add_parser(command.name, help=command.help)
        command.arguments(p)
        add_groups(p, command.groups)
    return parser


def _setup(args: argparse.Namespace) -> None:
    keep_freed_memory()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log, mode="a"))
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers[:] = handlers
    log.setLevel(logging.INFO)
    log.propagate = False
    if getattr(args, "threads", None):
        # OpenMP's wait policy is left at its default, whose threads spin briefly between parallel
        # regions: a job's threads are the cores it was given (Snakemake's --cores, SLURM's
        # cpus-per-task). OMP_WAIT_POLICY=PASSIVE made a 2-thread training step 1.5-1.8x slower; set
        # it where jobs share cores (the tests' workers).
        import torch

        torch.set_num_threads(args.threads)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (Snakemake, a SLURM time limit): a training loop stops after its step and saves its
    resume state; anything else stops at once. Either way atomic outputs are cleaned up."""
    trainer = sys.modules.get("lfcomp.engine.trainer")
    if trainer is None or not trainer.request_stop():
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    table = command_table()
    args = build_parser(table).parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        _setup(args)
        start = time.perf_counter()
        table[args.command].run(args)
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

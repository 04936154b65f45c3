"""Run the codec chain stage by stage through the CLI and print the paper's Table 2 for it.

Every stage runs as its own `lfcomp` process (as in the workflow), so wall times include start-up.
Prints one Markdown table: wall time, PSNR and size after each stage, then the rate of the
bitstream, the PSNR of the views decoded from it and the learned camera.

    python benchmarks/stage_table.py --source ../shared/data/hci_4d_lf_benchmark/cotton --crop 128 128 \
        --preset quick --model nerf --rank 10 --centroids 256 --out /tmp/bench-nerf
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from lfcomp.cli.main import command_table
from lfcomp.cli.options import CONFIG, DEVICE

COMMANDS = command_table()


def lfcomp(*args: object, common: dict[str, list[str]]) -> float:
    """Run one stage with the shared options it takes (``common``: per option group, and "log")."""
    groups = COMMANDS[str(args[0])].groups
    options = [*common["log"], *(x for group in groups for x in common.get(group, []))]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lfcomp.cli", *map(str, args), *options], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="data/cotton128")
    parser.add_argument("--crop", type=int, nargs=2)
    parser.add_argument("--views", type=int, nargs=2)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--model", default="nerf", choices=["nerf", "nelf"])
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--centroids", type=int, required=True)
    parser.add_argument("--holdout", help="a view held out of training, e.g. 4,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = [x for s in args.set for x in ("--set", s)]
    common = {CONFIG: ["--preset", args.preset, *sets], DEVICE: ["--threads", str(args.threads)],
              "log": ["--log", str(out / "chain.log")]}
    ingest = ["--format", "hci"] + (["--crop", *map(str, args.crop)] if args.crop else []) + \
             (["--views", *map(str, args.views)] if args.views else [])
    train_extra = ["--set", f"model.kind={args.model}"]
    if args.holdout:
        train_extra += ["--set", f"train.holdout_views=[[{args.holdout}]]"]
    p = {k: out / v for k, v in dict(lf="lightfield.zarr", org="org.pt", lr="lr.pt", cores="cores.zarr",
                                     dlr="dlr.pt", q="qdlr.pt", bits="bitstream.lfc", dec="decoded.zarr",
                                     metrics="metrics.json").items()}
    times = {
        "ingest": lfcomp("ingest", args.source, p["lf"], *ingest, common=common),
        "train": lfcomp("train", p["lf"], p["org"], *train_extra, common=common),
        "lowrank": lfcomp("lowrank", p["org"], p["lf"], p["lr"], "--rank", args.rank, common=common),
        "decompose": lfcomp("decompose", p["lr"], p["cores"], common=common),
        "distill": lfcomp("distill", p["cores"], p["lf"], p["dlr"], common=common),
        "quantize": lfcomp("quantize", p["dlr"], p["lf"], p["q"], "--centroids", args.centroids, common=common),
        "encode": lfcomp("encode", p["q"], p["bits"], common=common),
        "decode": lfcomp("decode", p["bits"], p["dec"], common=common),
        "evaluate": lfcomp("evaluate", p["lf"], p["dec"], p["metrics"], "--bitstream", p["bits"], "--model", p["q"],
                           common=common),
    }
    m = json.loads(p["metrics"].read_text())
    org = torch.load(p["org"], weights_only=True)
    names = {"nerf": f"{args.model.upper()}-org (train)", "lowrank": "LR (lowrank)", "distill": "DLR (decompose+distill)",
             "quantize": "QDLR (quantize)"}
    stage_time = {"nerf": times["train"], "lowrank": times["lowrank"],
                  "distill": times["decompose"] + times["distill"], "quantize": times["quantize"]}
    print(f"\n{args.model} on {args.source} ({m['grid'][0]}x{m['grid'][1]} views of {m['size'][0]}x{m['size'][1]}), "
          f"preset {args.preset}, r={args.rank}, N={args.centroids}, {args.threads} threads\n")
    print("| stage | wall s | PSNR-RGB (eval views) | held-out PSNR | params | size % of org |")
    print("|---|---|---|---|---|---|")
    for stage, s in m["stages"].items():
        report = torch.load(p["q"], weights_only=True)["stages"][stage]
        held = report.get("holdout", {}).get("psnr_rgb")
        print(f"| {names[stage]} | {stage_time[stage]:.1f} | {s['psnr_rgb']:.2f} ({s['eval_views']} views) | "
              f"{'' if held is None else f'{held:.2f}'} | {s['params']} | {s['size_percent']:.2f} |")
    print(f"\nbitstream {m['bytes']} bytes = {m['bpp']:.5f} bpp; decoded from the bitstream: PSNR-RGB "
          f"{m['psnr_rgb']:.2f} dB, PSNR-Y {m['psnr_y']:.2f} dB (all {m['grid'][0] * m['grid'][1]} views)"
          + (f"; held-out view {m['holdout']['psnr_rgb']:.2f} dB" if "holdout" in m else ""))
    camera = org["report"]["camera"]
    print(f"camera: f={camera['focal']:.2f} px, Δ={camera['baseline']:.5g}, κ={camera['kappa']:.5g}"
          + (f"; scene disparity {org['report']['disparity_range_scene']} px/view"
             if "disparity_range_scene" in org["report"] else ""))
    print("wall s: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()) + f"; total {sum(times.values()):.1f}")


if __name__ == "__main__":
    main()

"""What each part of the latent codec buys, at one λ on one scene: the angular model (disparity
warp or none), the entropy model (its context-coded rate against a static per-grid code of the
same latents) and the training length. Prints one table; every figure is measured in this run.

    .venv/bin/python benchmarks/latent_ablation.py --source data/cotton128 --lmbda 1e-3 --out /tmp/ablation
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def lfcomp(*args: object) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lfcomp.cli", *map(str, args)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def entropy_model_gain(bitstream: Path) -> tuple[float, float]:
    """(bytes of the latents under the codec's context model, bytes of the same latents under the
    ideal static distribution of each grid, its side information not counted)."""
    import torch

    from lfcomp.bitstream.container import read_bitstream
    from lfcomp.codecs.latent.entropy_model import gather_context, laplace_bits
    from lfcomp.codecs.latent.payload import model_from_payload

    model = model_from_payload(read_bitstream(bitstream), str(bitstream))
    latents = model.flat_latents("round").detach().numpy().astype(np.int64)
    arm = model.arm.integer()
    plan = model.plan
    context_bits = 0.0
    for rows in plan.passes:
        mean, scale = arm.predict(gather_context(torch.from_numpy(latents), plan, rows).numpy())
        x = torch.from_numpy(latents[plan.position[rows]].astype(np.float64))
        bits = laplace_bits(x, torch.from_numpy(mean), torch.from_numpy(np.log2(scale)))
        context_bits += float(bits.sum())
    static_bits = 0.0
    for grid in model.field.all_latents():
        values = grid.detach().numpy().astype(np.int64).ravel()
        _, counts = np.unique(values, return_counts=True)
        p = counts / counts.sum()
        static_bits -= float((counts * np.log2(p)).sum())
    return context_bits / 8, static_bits / 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="data/cotton128")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--crop", type=int, nargs=2)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--lmbda", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from lfcomp.config import load_preset

    steps = load_preset(args.preset).latent.steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lf = out / "lightfield.zarr"
    if not lf.exists():
        lfcomp("ingest", args.source, lf, "--format", args.format, *(["--crop", *args.crop] if args.crop else []))
    variants = {
        "full (disparity warp, context model)": [],
        "no angular model (no warp)": ["--set", "latent.warp=false"],
        f"training ½ ({steps // 2} steps)": ["--set", f"latent.steps={steps // 2}"],
        f"training 2× ({2 * steps} steps)": ["--set", f"latent.steps={2 * steps}"],
    }
    rows = []
    for i, (name, sets) in enumerate(variants.items()):
        d = out / f"v{i}"
        d.mkdir(exist_ok=True)
        fit = lfcomp("latent-fit", lf, d / "latent.pt", "--lmbda", args.lmbda, "--preset", args.preset,
                     "--threads", args.threads, *sets)
        lfcomp("latent-encode", d / "latent.pt", lf, d / "bitstream.lfc")
        lfcomp("decode", d / "bitstream.lfc", d / "decoded.zarr", "--threads", args.threads)
        lfcomp("evaluate", lf, d / "decoded.zarr", d / "metrics.json", "--bitstream", d / "bitstream.lfc",
               "--model", d / "latent.pt")
        m = json.loads((d / "metrics.json").read_text())
        rows.append((name, m["bytes"], m["bpp"], m["psnr_rgb"], fit))
        if i == 0:
            context, static = entropy_model_gain(d / "bitstream.lfc")
    base = rows[0]
    print(f"\n{args.source}, λ={args.lmbda:g}, preset {args.preset}\n")
    print("| variant | bytes | bpp | PSNR-RGB dB | Δ PSNR dB | Δ bytes % | fit s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, nbytes, bpp, psnr, fit in rows:
        print(f"| {name} | {nbytes} | {bpp:.5f} | {psnr:.2f} | {psnr - base[3]:+.2f} | "
              f"{100 * (nbytes / base[1] - 1):+.1f} | {fit:.0f} |")
    print(f"\nentropy model: the full variant's latents cost {context:.0f} B under its context model, "
          f"{static:.0f} B under the ideal static distribution of each grid (side information not counted): "
          f"{100 * (1 - context / static):.1f} % saved" if math.isfinite(static) and static else "")


if __name__ == "__main__":
    main()

"""Rate–distortion table of the latent codec against hevc444 (and any QDLR results) on one scene.

Runs, on the scene given (any format ``lfcomp ingest`` reads), the latent codec at each λ
(``latent-fit``, the largest λ from scratch, each smaller one warm-started from the next larger, then ``latent-encode``, ``decode``,
``evaluate``) and the hevc444 anchor at each QP, each stage as its own ``lfcomp`` process, and
prints per rate point: bytes, bpp, PSNR-RGB, encode seconds (fit + encode), decode seconds and
MAC/pixel; then BD-PSNR and BD-rate against hevc444 (cubic and pchip, 0–0.2 bpp). QDLR rate
points made elsewhere (the workflow's metrics.json) join the table with ``--include``.

    .venv/bin/python benchmarks/rd_table.py --source data/cotton128 --out /tmp/rd-cotton
    .venv/bin/python benchmarks/rd_table.py --source ../shared/data/hci_4d_lf_benchmark/antinous \\
        --crop 128 128 --out /tmp/rd-antinous --lambdas 3e-4 1e-3 3e-3 1e-2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lfcomp.evaluation.bd import bd_all


def lfcomp(*args: object) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lfcomp.cli", *map(str, args)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="data/cotton128")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--crop", type=int, nargs=2)
    parser.add_argument("--views", type=int, nargs=2)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--lambdas", type=float, nargs="+", help="default: the preset's latent.lambdas")
    parser.add_argument("--qps", type=int, nargs="+", default=[12, 17, 22, 27, 32, 37, 42, 47])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="latent-fit --set options")
    parser.add_argument("--include", nargs="*", default=[], help="metrics.json of other codecs (e.g. QDLR)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from lfcomp.config import load_preset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lf = out / "lightfield.zarr"
    ingest = ["--format", args.format] + (["--crop", *args.crop] if args.crop else []) + \
             (["--views", *args.views] if args.views else [])
    if not lf.exists():
        lfcomp("ingest", args.source, lf, *ingest)
    rows = []
    lambdas = sorted(args.lambdas or load_preset(args.preset).latent.lambdas, reverse=True)
    previous = None
    sets = [x for s in args.set for x in ("--set", s)]
    for lmbda in lambdas:
        d = out / "latent" / f"l{lmbda:g}"
        d.mkdir(parents=True, exist_ok=True)
        init = ["--init", previous] if previous else []
        fit = lfcomp("latent-fit", lf, d / "latent.pt", "--lmbda", lmbda, "--preset", args.preset, "--threads",
                     args.threads, *init, *sets)
        enc = lfcomp("latent-encode", d / "latent.pt", lf, d / "bitstream.lfc")
        dec = lfcomp("decode", d / "bitstream.lfc", d / "decoded.zarr", "--threads", args.threads)
        lfcomp("evaluate", lf, d / "decoded.zarr", d / "metrics.json", "--bitstream", d / "bitstream.lfc",
               "--model", d / "latent.pt")
        m = json.loads((d / "metrics.json").read_text())
        rows.append(("latent", f"λ={lmbda:g}", m["bytes"], m["bpp"], m["psnr_rgb"], fit + enc, dec, m["macs_per_pixel"]))
        previous = d / "latent.pt"
    for qp in args.qps:
        d = out / "hevc444" / f"qp{qp}"
        lfcomp("anchor", lf, d, "--codec", "hevc", "--chroma", "444", "--qp", qp)
        m = json.loads((d / "metrics.json").read_text())
        rows.append(("hevc444", f"qp{qp}", m["bytes"], m["bpp"], m["psnr_rgb"], m["encode_seconds"],
                     m["decode_seconds"], None))
    for path in args.include:
        m = json.loads(Path(path).read_text())
        label = m.get("codec") or f"qdlr-{m.get('model_kind', 'nerf')}"
        point = "-".join(f"{k}{v}" for k, v in (m.get("rate_point") or {}).items())
        rows.append((label, point, m["bytes"], m["bpp"], m["psnr_rgb"], None, None, None))

    print(f"\n{args.source}: {out}\n")
    print("| codec | rate point | bytes | bpp | PSNR-RGB dB | encode s | decode s | MAC/pixel |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for codec, point, nbytes, bpp, psnr, enc, dec, macs in sorted(rows, key=lambda r: (r[0], r[3])):
        fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
        print(f"| {codec} | {point} | {nbytes} | {bpp:.5f} | {psnr:.2f} | {fmt(enc, '.1f')} | {fmt(dec, '.2f')} "
              f"| {fmt(macs, 'd')} |")
    anchor = sorted((r[3], r[4]) for r in rows if r[0] == "hevc444")
    print("\n| codec | vs | BD-PSNR cubic | BD-PSNR pchip | BD-rate cubic % | BD-rate pchip % |")
    print("|---|---|---:|---:|---:|---:|")
    for codec in sorted({r[0] for r in rows} - {"hevc444"}):
        test = sorted((r[3], r[4]) for r in rows if r[0] == codec)
        res = bd_all([a[0] for a in anchor], [a[1] for a in anchor], [t[0] for t in test], [t[1] for t in test],
                     (0.0, 0.2))
        cell = lambda k: "n/c" if res[k].value is None else f"{res[k].value:+.2f}"  # noqa: E731
        print(f"| {codec} | hevc444 | {cell('psnr_cubic')} | {cell('psnr_pchip')} | {cell('rate_cubic')} "
              f"| {cell('rate_pchip')} |")


if __name__ == "__main__":
    main()

"""Training and rendering throughput of lfcomp's scene models against a textbook PyTorch step, one run.

For each model size (the ``quick`` and ``paper`` presets) and model kind, and each precision
(fp32, and bf16 autocast where the device supports it), this times

* lfcomp's training step: ``lfcomp.engine.trainer.Trainer`` on random ray batches (sampling, the
  camera, rendering, Adam, the LR schedule), as the ``train`` stage runs it;
* a textbook step of the same size, written here the straightforward way (NeRF: stratified samples,
  positional encoding of point and direction per sample, the MLP with its skip, alpha compositing;
  NeLF: the 4-D ray coordinate through the MLP), same batch, same threads, same Adam;
* rendering (no gradients): lfcomp's scene model over a whole view in the chunks ``render_view``
  takes for evaluation, the decoder and the clip (the preset's ``chunk_rays``, on a CPU capped so
  that an activation stays small) against the textbook forward pass in chunks of ``chunk_rays``.

It prints one Markdown table of rays/s with the ratios lfcomp / textbook (> 1: lfcomp is faster), in
the same precision and against the textbook fp32 step (what ``precision: auto`` gains over a
straightforward fp32 implementation).
Timings are medians over ``--repeats`` runs of ``--steps`` steps (after warm-up), lfcomp's, the
textbook's and (for a bf16 row) the textbook fp32 runs alternating, so that a change of load on the
machine hits all alike and every ratio of a row is between runs timed together.

    python benchmarks/throughput.py --threads 2                # both sizes, both kinds
    python benchmarks/throughput.py --sizes quick --device cuda
    python benchmarks/throughput.py --sizes quick --kinds nerf --samples 32   # another sample count

The process keeps freed buffers as every ``lfcomp`` command does (``keep_freed_memory``), for both
steps alike; run it with the OpenMP wait policy of the jobs it stands for (the workflow's: unset).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from lfcomp.config import load_preset
from lfcomp.engine.device import bf16_supported, resolve_device, resolve_precision
from lfcomp.engine.memory import keep_freed_memory
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.trainer import Optimisation, Trainer
from lfcomp.models.camera import initial_camera
from lfcomp.models.scene import SceneModel, make_spec

GRID, SIZE = (9, 9), (128, 128)


# --------------------------------------------------------------------------- the textbook models


def encode(x: torch.Tensor, freqs: int) -> torch.Tensor:
    out = [x]
    for k in range(freqs):
        out += [torch.sin(2.0 ** k * math.pi * x), torch.cos(2.0 ** k * math.pi * x)]
    return torch.cat(out, dim=-1)


class TextbookMLP(nn.Module):
    """depth × width ReLU layers, the input concatenated again at each skip, then the heads."""

    def __init__(self, inputs: int, depth: int, width: int, skips: tuple[int, ...], directions: int = 0) -> None:
        super().__init__()
        self.skips = set(skips)
        self.layers = nn.ModuleList(nn.Linear((inputs if i == 0 else width) + (inputs if i in self.skips and i else 0),
                                              width) for i in range(depth))
        self.directions = directions
        if directions:
            self.sigma, self.feature = nn.Linear(width, 1), nn.Linear(width, width)
            self.hidden, self.rgb = nn.Linear(width + directions, width // 2), nn.Linear(width // 2, 3)
        else:
            self.rgb = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor, d: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = x
        for i, layer in enumerate(self.layers):
            if i in self.skips and i:
                h = torch.cat([h, x], dim=-1)
            h = torch.relu(layer(h))
        if not self.directions:
            return torch.sigmoid(self.rgb(h)), None
        sigma = torch.relu(self.sigma(h)).squeeze(-1)
        h = torch.relu(self.hidden(torch.cat([self.feature(h), d], dim=-1)))
        return torch.sigmoid(self.rgb(h)), sigma


def textbook_render(mlp: TextbookMLP, kind: str, rays: torch.Tensor, samples: int, pos_freqs: int,
                    dir_freqs: int) -> torch.Tensor:
    """Colour of rays (R, 4: s, t, x, y in [−1, 1]): NeRF samples along a simple pinhole ray."""
    if kind == "nelf":
        return mlp(encode(rays, pos_freqs))[0]
    origins = torch.cat([rays[:, :2] * 0.05, torch.zeros_like(rays[:, :1])], dim=-1)
    directions = torch.cat([rays[:, 2:], -torch.ones_like(rays[:, :1])], dim=-1)
    t = torch.linspace(2.0, 6.0, samples, device=rays.device)
    t = t + torch.rand(rays.shape[0], samples, device=rays.device) * (4.0 / samples)
    points = origins[:, None] + directions[:, None] * t[..., None]
    unit = (directions / directions.norm(dim=-1, keepdim=True))[:, None].expand_as(points)
    rgb, sigma = mlp(encode(points.reshape(-1, 3) / 6.0, pos_freqs), encode(unit.reshape(-1, 3), dir_freqs))
    rgb, sigma = rgb.reshape(-1, samples, 3), sigma.reshape(-1, samples)
    delta = torch.cat([t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], 1e10)], dim=-1)
    alpha = 1.0 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=-1), dim=-1)[:, :-1]
    return ((alpha * trans)[..., None] * rgb).sum(dim=1)


# --------------------------------------------------------------------------- timing


def timed_alternately(runs: list, warmup: int, repeats: int) -> list[float]:
    """Median seconds of each of ``runs`` after ``warmup`` calls each, timed in alternation (a, b,
    c, a, b, c, ...) so that a change of machine load hits all alike."""
    for _ in range(warmup):
        for run in runs:
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, out in zip(runs, times):
            start = time.perf_counter()
            run()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(preset: str, kind: str, precision: str, device: torch.device, args: argparse.Namespace) -> dict:
    cfg = load_preset(preset, kind)
    m, train = cfg.model, cfg.train
    if args.samples and kind == "nerf":
        m = dataclasses.replace(m, samples=args.samples)
    batch, chunk = train.batch_rays, train.chunk_rays
    views = np.random.default_rng(0).integers(0, 256, (*GRID, *SIZE, 3), dtype=np.uint8)
    camera = initial_camera(*SIZE, (-1.0, 1.0), cfg.camera.near, cfg.camera.far)
    spec = make_spec(m, GRID, SIZE, cfg.camera.near, cfg.camera.far, camera["focal"])
    bf16 = precision == "bf16"

    model = SceneModel(spec, camera).to(device)
    rays = RayBatches.from_views(views, device, 0, [])
    trainer = Trainer(model, rays, model.parameters(),
                      Optimisation(args.steps, train.lr, 1.0, batch, 10**9, precision), "bench")

    inputs = 4 * (1 + 2 * m.pos_freqs) if kind == "nelf" else 3 * (1 + 2 * m.pos_freqs)
    directions = 0 if kind == "nelf" else 3 * (1 + 2 * m.dir_freqs)
    mlp = TextbookMLP(inputs, m.depth, m.width, tuple(m.skips), directions).to(device)
    optimiser = torch.optim.Adam(mlp.parameters(), lr=train.lr)
    colours = torch.rand(batch, 3, device=device)

    def textbook_step(in_bf16: bool) -> None:
        r = torch.rand(batch, 4, device=device) * 2 - 1
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=in_bf16):
            out = textbook_render(mlp, kind, r, m.samples, m.pos_freqs, m.dir_freqs)
        loss = ((out.float() - colours) ** 2).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        sync(device)

    def textbook_steps(in_bf16: bool) -> None:
        for _ in range(args.steps):
            textbook_step(in_bf16)

    # The textbook fp32 step, the reference of every row, is timed in the same alternation.
    train_runs = [lambda: (trainer.run(), sync(device)), lambda: textbook_steps(bf16)]
    train_runs += [lambda: textbook_steps(False)] if bf16 else []
    train_times = [t / args.steps for t in timed_alternately(train_runs, args.warmup, args.repeats)]

    model.eval()

    ys, xs = torch.meshgrid(torch.arange(SIZE[0], device=device, dtype=torch.float32),
                            torch.arange(SIZE[1], device=device, dtype=torch.float32), indexing="ij")
    xs, ys = xs.reshape(-1), ys.reshape(-1)

    lfcomp_chunk = model.rays_per_chunk(chunk)  # on a CPU, capped so an activation fits (render_view)

    @torch.no_grad()
    def lfcomp_render() -> None:  # what SceneModel.render_view does, minus the copy to numpy
        for start in range(0, xs.numel(), lfcomp_chunk):
            x, y = xs[start:start + lfcomp_chunk], ys[start:start + lfcomp_chunk]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                model(torch.full_like(x, 0.5), torch.full_like(x, -0.5), x, y)
        sync(device)

    @torch.no_grad()
    def textbook_render_view(in_bf16: bool) -> None:
        for start in range(0, SIZE[0] * SIZE[1], chunk):
            r = torch.rand(min(chunk, SIZE[0] * SIZE[1] - start), 4, device=device) * 2 - 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=in_bf16):
                textbook_render(mlp, kind, r, m.samples, m.pos_freqs, m.dir_freqs)
        sync(device)

    pixels = SIZE[0] * SIZE[1]
    render_runs = [lfcomp_render, lambda: textbook_render_view(bf16)]
    render_runs += [lambda: textbook_render_view(False)] if bf16 else []
    render_times = timed_alternately(render_runs, args.warmup, args.repeats)
    return {"preset": preset, "kind": kind, "precision": precision, "batch": batch,
            "samples": m.samples if kind == "nerf" else 1,
            "train_lfcomp": batch / train_times[0], "train_textbook": batch / train_times[1],
            "train_textbook_fp32": batch / train_times[-1],
            "render_lfcomp": pixels / render_times[0], "render_textbook": pixels / render_times[1],
            "render_textbook_fp32": pixels / render_times[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["quick", "paper"], choices=["smoke", "quick", "paper"])
    parser.add_argument("--kinds", nargs="+", default=["nerf", "nelf"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, help="NeRF samples a ray (default: the preset's)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each before timing")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    device = resolve_device(args.device)
    precisions = [p for p in args.precisions if p == "fp32" or bf16_supported(device)]
    rows = []
    for preset in args.sizes:
        for kind in args.kinds:
            for precision in precisions:
                rows.append(measure(preset, kind, precision, device, args))
                print(f"measured {preset} {kind} {precision}", flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"\nThroughput on {name} (torch {torch.__version__}, OMP_WAIT_POLICY {policy}), rays/s; "
          "ratio = lfcomp / textbook\n")
    print("| size | kind | precision | batch | samples | train lfcomp | train textbook | ratio | vs textbook fp32 | "
          "render lfcomp | render textbook | ratio | vs textbook fp32 |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        train_fp32 = f"{r['train_lfcomp'] / r['train_textbook_fp32']:.2f}"
        render_fp32 = f"{r['render_lfcomp'] / r['render_textbook_fp32']:.2f}"
        print(f"| {r['preset']} | {r['kind']} | {r['precision']} | {r['batch']} | {r['samples']} | "
              f"{r['train_lfcomp']:,.0f} | "
              f"{r['train_textbook']:,.0f} | {r['train_lfcomp'] / r['train_textbook']:.2f} | {train_fp32} | "
              f"{r['render_lfcomp']:,.0f} | {r['render_textbook']:,.0f} | "
              f"{r['render_lfcomp'] / r['render_textbook']:.2f} | {render_fp32} |")

    if not args.samples:  # the hours are for the preset as it is
        print_stage_hours(rows, device)


def stage_steps(cfg) -> dict[str, int]:
    """Training steps of each compression stage of a preset, per scene (train) or per rate point;
    quantize trains ``steps_per_layer`` after each weight matrix of the dense network (a factorized
    slot has two: more) and ``codebook_steps`` at the end."""
    model = SceneModel(make_spec(cfg.model, GRID, SIZE, cfg.camera.near, cfg.camera.far, 100.0),
                       initial_camera(*SIZE, (-1.0, 1.0), cfg.camera.near, cfg.camera.far))
    matrices = sum(1 for _, slot in model.field.named_slots())
    return {"train": cfg.train.steps, "lowrank": cfg.lowrank.steps, "distill": cfg.distill.steps,
            "quantize": cfg.quantize.steps_per_layer * matrices + cfg.quantize.codebook_steps}


def print_stage_hours(rows: list[dict], device: torch.device) -> None:
    """Hours of each stage of the paper preset on this device: its steps × batch rays / the training
    rays/s measured above in the stage's precision (the dense network's step: an upper bound for
    distill and quantize, whose networks are factorized or partly frozen; evaluation not counted)."""
    measured = {(r["kind"], r["precision"]): r["train_lfcomp"] for r in rows if r["preset"] == "paper"}
    if not measured:
        return
    print("\nPaper preset on this device, hours per stage (steps x batch / measured training rays/s):\n")
    print("| kind | stage | precision | steps | hours | for the paper's rate points |")
    print("|---|---|---|---:|---:|---:|")
    for kind in dict.fromkeys(k for k, _ in measured):
        cfg = load_preset("paper", kind)
        ranks = len({rank for rank, _ in cfg.rate_points})
        runs = {"train": 1, "lowrank": ranks, "distill": ranks, "quantize": len(cfg.rate_points)}
        total = 0.0
        for stage, steps in stage_steps(cfg).items():
            precision = resolve_precision(getattr(cfg, stage).precision, device)
            if (kind, precision) not in measured:
                continue
            hours = steps * cfg.train.batch_rays / measured[kind, precision] / 3600
            total += hours * runs[stage]
            print(f"| {kind} | {stage} | {precision} | {steps:,} | {hours:,.1f} | x{runs[stage]} = "
                  f"{hours * runs[stage]:,.1f} |")
        print(f"| {kind} | **all stages, one scene** | | | | **{total:,.1f}** |")


if __name__ == "__main__":
    main()

"""The CUDA path of every stage (marker ``gpu``; run with ``pytest -m gpu`` on a machine with a GPU).

A few steps of each stage on a tiny light field with ``--device cuda``; the decoder must render on
the GPU exactly the views it renders on the CPU (uint8), and training in ``auto`` precision
(bf16 autocast, TF32) must run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lfcomp.cli import main
from lfcomp.io.lightfield import read_lightfield

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

ROOT = Path(__file__).resolve().parents[1]
CUDA = ["--preset", "smoke", "--device", "cuda"]


@pytest.fixture(scope="module", params=["nerf", "nelf"])
def gpu_chain(request, tmp_path_factory) -> dict[str, Path]:
    kind = request.param
    d = tmp_path_factory.mktemp(f"gpu-{kind}")
    p = {k: d / v for k, v in dict(lf="lf.zarr", nerf="nerf.pt", lr="lr.pt", cores="cores.zarr", dlr="dlr.pt",
                                    q="q.pt", bits="bits.lfc", gpu="gpu.zarr", cpu="cpu.zarr", clip="clip.gif").items()}
    assert main(["ingest", str(ROOT / "data" / "cotton128"), str(p["lf"]), "--views", "5", "5", "--crop", "32", "32"]) == 0
    assert main(["train", str(p["lf"]), str(p["nerf"]), *CUDA, "--set", "train.steps=40", "--set", f"model.kind={kind}",
                 "--set", "train.precision=auto"]) == 0
    assert main(["lowrank", str(p["nerf"]), str(p["lf"]), str(p["lr"]), "--rank", "4", *CUDA]) == 0
    assert main(["decompose", str(p["lr"]), str(p["cores"]), "--rank", "4"]) == 0
    assert main(["distill", str(p["cores"]), str(p["lf"]), str(p["dlr"]), *CUDA]) == 0
    assert main(["quantize", str(p["dlr"]), str(p["lf"]), str(p["q"]), "--centroids", "8", *CUDA]) == 0
    assert main(["encode", str(p["q"]), str(p["bits"])]) == 0
    return p


def test_every_stage_runs_on_cuda_and_decodes_as_on_the_cpu(gpu_chain) -> None:
    p = gpu_chain
    assert main(["decode", str(p["bits"]), str(p["gpu"]), "--device", "cuda"]) == 0
    assert main(["decode", str(p["bits"]), str(p["cpu"]), "--device", "cpu"]) == 0
    gpu, cpu = read_lightfield(p["gpu"]).views, read_lightfield(p["cpu"]).views
    assert gpu.shape == cpu.shape
    assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= 1  # float order may differ on the GPU by one level
    assert main(["clip", str(p["bits"]), str(p["clip"]), "--frames", "4", "--device", "cuda"]) == 0
    assert p["clip"].stat().st_size > 0


def test_latent_codec_on_cuda(tmp_path) -> None:
    lf = tmp_path / "lf.zarr"
    assert main(["ingest", str(ROOT / "data" / "cotton128"), str(lf), "--views", "5", "5", "--crop", "32", "32"]) == 0
    assert main(["latent-fit", str(lf), str(tmp_path / "l.pt"), "--lmbda", "0.01", *CUDA]) == 0
    assert main(["latent-encode", str(tmp_path / "l.pt"), str(lf), str(tmp_path / "l.lfc")]) == 0
    assert main(["decode", str(tmp_path / "l.lfc"), str(tmp_path / "d.zarr"), "--device", "cuda"]) == 0

"""Conformance: golden bitstreams that every version of lfcomp must still decode bit for bit.

The streams in ``tests/data/golden/`` were written by lfcomp's main before the package
restructuring (``golden.json`` names the commit; ``make_golden.sh`` is how). Each is decoded here
in a separate process, from the file alone, and the rendered grid views and fractional viewpoints
must have exactly the recorded checksums. Never regenerate these files to make this test pass: a
change of the bitstream format bumps the container version and keeps decoding the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from lfcomp.bitstream.container import read_bitstream
from lfcomp.engine.device import bf16_supported
from lfcomp.models.spec import render_precision

GOLDEN = Path(__file__).parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "golden.json").read_text())
STREAMS = sorted(MANIFEST["streams"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", STREAMS)
def test_golden_file_is_unchanged(name):
    expected = MANIFEST["streams"][name]
    data = (GOLDEN / name).read_bytes()
    assert len(data) == expected["bytes"]
    assert sha256(data) == expected["sha256"], "a golden bitstream was modified; restore it from git"


@pytest.mark.parametrize("name", STREAMS)
def test_golden_stream_decodes_bit_exact(name, tmp_path):
    expected = MANIFEST["streams"][name]
    bf16 = render_precision(read_bitstream(GOLDEN / name).header.get("spec", {})) == "bf16"
    if bf16 and not bf16_supported(torch.device("cpu")):
        pytest.skip("bf16 views are pinned where the CPU computes bf16 natively (AVX-512 BF16 or AMX)")
    out = tmp_path / "decoded.zarr"
    positions = [arg for u, v in MANIFEST["free_positions"] for arg in ("--at", f"{u},{v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lfcomp.cli", "decode", str(GOLDEN / name), str(out), *positions,
                           "--threads", "1", "--device", "cpu"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    group = zarr.open_group(str(out), mode="r")
    views, free = np.asarray(group["views"][...]), np.asarray(group["free_views"][...])
    assert list(views.shape) == expected["views_shape"] and views.dtype == np.uint8
    assert list(free.shape) == expected["free_views_shape"]
    assert sha256(views.tobytes()) == expected["views_sha256"]
    assert sha256(free.tobytes()) == expected["free_views_sha256"]

#!/usr/bin/env bash
# qdlr-nerf-flipped-smoke.lfc: make_golden.sh's NeRF chain on its light field (5x5 views of 32x32 cut
# from cotton128) with the rows of the view grid stored the other way, as a folder of view_UU_VV.png
# (no parameters.cfg): ingest estimates a vertical view step of -1 and the spec carries it.
# This version's command line (make_golden.sh keeps that of aea7edf).
set -euo pipefail
LF=${LFCOMP:-lfcomp}
PY=${PYTHON:-python}
OUT=$1
SMOKE="--preset smoke --threads 1 --device cpu"  # stages that train or render
CPU="--threads 1 --device cpu"
$PY - "$OUT/flipped" <<'PYTHON'
import sys
from pathlib import Path

from PIL import Image

from lfcomp.io.lightfield import ingest

views = ingest("data/cotton128", "hci", views=(5, 5), crop=(32, 32)).views[::-1]
folder = Path(sys.argv[1])
folder.mkdir(parents=True)
for u in range(5):
    for v in range(5):
        Image.fromarray(views[u, v]).save(folder / f"view_{u:02d}_{v:02d}.png")
PYTHON
$LF ingest $OUT/flipped $OUT/lf.zarr --format folder
d=$OUT/nerf
$LF train $OUT/lf.zarr $d/org.pt --set model.kind=nerf $SMOKE
$LF lowrank $d/org.pt $OUT/lf.zarr $d/lr.pt --rank 4 $SMOKE
$LF decompose $d/lr.pt $d/cores.zarr --rank 4
$LF distill $d/cores.zarr $OUT/lf.zarr $d/dlr.pt $SMOKE
$LF quantize $d/dlr.pt $OUT/lf.zarr $d/qdlr.pt --centroids 8 $SMOKE
$LF encode $d/qdlr.pt $d/bitstream.lfc
$LF decode $d/bitstream.lfc $d/decoded.zarr --at 2,2.5 --at 0.25,3.75 $CPU
$LF evaluate $OUT/lf.zarr $d/decoded.zarr $d/metrics.json --bitstream $d/bitstream.lfc --model $d/qdlr.pt

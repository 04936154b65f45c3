#!/usr/bin/env bash
# Golden bitstreams from the main of aea7edf (smoke preset, 5x5 views of 32x32 cut from cotton128).
set -euo pipefail
LF=${LFCOMP:-lfcomp}
OUT=$1
SMOKE="--preset smoke --threads 1 --device cpu"
$LF ingest data/cotton128 $OUT/lf.zarr --format hci --views 5 5 --crop 32 32 $SMOKE
for kind in nerf nelf; do
  d=$OUT/$kind
  $LF train $OUT/lf.zarr $d/org.pt --set model.kind=$kind $SMOKE
  $LF lowrank $d/org.pt $OUT/lf.zarr $d/lr.pt --rank 4 $SMOKE
  $LF decompose $d/lr.pt $d/cores.zarr --rank 4 $SMOKE
  $LF distill $d/cores.zarr $OUT/lf.zarr $d/dlr.pt $SMOKE
  $LF quantize $d/dlr.pt $OUT/lf.zarr $d/qdlr.pt --centroids 8 $SMOKE
  $LF encode $d/qdlr.pt $d/bitstream.lfc $SMOKE
  $LF decode $d/bitstream.lfc $d/decoded.zarr --at 2,2.5 --at 0.25,3.75 $SMOKE
  $LF evaluate $OUT/lf.zarr $d/decoded.zarr $d/metrics.json --bitstream $d/bitstream.lfc --model $d/qdlr.pt $SMOKE
done

#!/usr/bin/env bash
# The main job on built-in data, end to end:
#   simulate ALICE-ZN-like showers -> train a conditional GAN -> generate -> evaluate
# against held-out showers, always beside the data-vs-data floor.
# Usage: bash examples/quickstart.sh [OUT_DIR]   (default: ./quickstart)
# Sizes are small so that it finishes in a few minutes on a laptop CPU; scale N and EPOCHS up
# for a real model (KERAS_BACKEND picks tensorflow, jax or torch).
set -euo pipefail
out=${1:-quickstart}
N=${N:-6000}
EPOCHS=${EPOCHS:-3}
mkdir -p "$out"
calozdc simulate zn44 -n "$N" -o "$out/zn44.h5" --seed 1 --overwrite
calozdc info "$out/zn44.h5"
calozdc train gan --data "$out/zn44.h5" --epochs "$EPOCHS" --batch-size 64 \
    --run-dir "$out/gan" --overwrite
calozdc generate "$out/gan" -n 1000 -o "$out/generated.h5" --seed 2 --overwrite
calozdc evaluate "$out/gan" --data "$out/zn44.h5" -o "$out/evaluation" --overwrite
echo "report: $out/evaluation/report.png, metrics: $out/evaluation/metrics.json"

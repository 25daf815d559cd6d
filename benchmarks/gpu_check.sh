#!/usr/bin/env bash
# The GPU checks this project still owes, as one run on the offline CUDA machine (about 9 minutes on an H100/H200).
#   here, once:   ../shared/gpu/wheels.sh                     (puts the wheels the GPU image lacks into .whl/)
#   device tool:  run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#   then here:    python benchmarks/estimator_accuracy.py      (reads benchmarks/results/*-grid.jsonl too)
#                 python benchmarks/time_accuracy.py --data ../shared/calibration/h200-trainer-grid1.jsonl benchmarks/results/*-grid.jsonl
# Results land in $OUT (the device tool brings them back); copy them to benchmarks/results/ and commit them.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# 1. New memory and step-time measurements: about 19 configurations the shared rows do not cover (6 minutes).
timeout 420 python3 benchmarks/gpu_calibration.py --budget-s 330 --out "$OUT/gpu-grid.jsonl" 2>&1 | tee "$OUT/gpu-grid.txt"

# 2. The notebook cells that only run on CUDA: QLoRA training (08_train) and the calibration harness (06_calibrate).
for nb in nbs/06_calibrate.ipynb nbs/08_train.ipynb; do
  timeout 150 python3 /tmp/site/bin/nbdev-test --flags cuda "$nb" 2>&1 | tail -25 | tee -a "$OUT/cuda-cells.txt"
done

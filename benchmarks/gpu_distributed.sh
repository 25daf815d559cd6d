#!/usr/bin/env bash
# The distributed GPU check this project still owes: lmtune train on one GPU and on all GPUs of the machine, for
# ddp, fsdp, zero2 and zero3, peak memory per rank against lmtune's estimate (and, with 2+ GPUs, the Trainer on a
# tensor-parallel model). About 4 minutes on one H100/H200; each extra GPU count adds 4 launches.
#   here, once:   ../shared/gpu/wheels.sh                     (puts the wheels the GPU image lacks into .whl/)
#   device tool:  run(command="bash benchmarks/gpu_distributed.sh", carry=[".whl"], timeout_s=600)
# Results land in $OUT (the device tool brings them back); copy them to benchmarks/results/ and commit them.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl; fi
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
{ echo "\$ bash benchmarks/gpu_distributed.sh   # $(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  timeout 560 python3 benchmarks/gpu_distributed.py --out "$OUT"; } 2>&1 | tee "$OUT/gpu-distributed.txt"

#!/usr/bin/env bash
# The GPU checks this project still owes, as one run on the offline CUDA machine (about 9 minutes on an H200):
#   1. the calibration grid of configurations never measured (benchmarks/gpu_calibration.py: prefix, IA3, freeze,
#      BitFit, DoRA, Liger on/off, paged and foreach optimizers, fp16, a 32k context, new architectures; ~5 min),
#   2. lmtune's SFT against a plain Trainer (benchmarks/train_throughput.py on a 1B-shaped Llama with random weights),
#   3. the notebook cells that only run on CUDA (06_calibrate, 08_train).
# Each stage gets what is left of DEADLINE; what a stage wrote before a timeout still comes back in $OUT.
#   here, once:   ../shared/gpu/wheels.sh                     (puts the wheels the GPU image lacks into .whl/, Liger included)
#                 python benchmarks/gpu_calibration.py --dry-run   (the grid, its predictions and the time it needs)
#   device tool:  run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#   then here:    copy the files from $OUT to benchmarks/results/, then
#                 python benchmarks/time_accuracy.py --data ../shared/calibration/*.jsonl benchmarks/results/h200-grid3.jsonl \
#                        --out benchmarks/results/time_accuracy_grid3.txt
#                 python benchmarks/estimator_accuracy.py          (reads benchmarks/results/*-grid*.jsonl too)
set -uo pipefail
OUT=${OUT:-benchmarks/results}
DEADLINE=${DEADLINE:-570}     # seconds for the whole script (the device tool allows 600 per command)
left() { echo $(( DEADLINE - SECONDS )); }
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# 1. New memory and step-time measurements (rows appended one by one: a timeout keeps what was measured).
#    Start no new configuration once 250 s of the grid are spent, and stop it for good 60 s later.
timeout $(( $(left) - 210 )) python3 benchmarks/gpu_calibration.py --budget-s $(( $(left) - 270 )) \
  --out "$OUT/h200-grid3.jsonl" 2>&1 | tee "$OUT/gpu-grid.txt"

# 2. lmtune's SFT against a plain Trainer on the same model, data and settings (the 1.3x claim of issue 14).
timeout $(( $(left) - 110 )) python3 - <<'EOF' 2>&1 | tail -3 | tee "$OUT/train-throughput.txt"
from lmtune.models import make_tiny_model_dir   # a Llama-3.2-1B-shaped model with random weights (no download)
make_tiny_model_dir('/tmp/llama-1b-shape', hidden_size=2048, num_layers=16, num_heads=32, num_kv_heads=8,
                    intermediate_size=8192, max_position_embeddings=2048)
EOF
timeout $(( $(left) - 100 )) python3 benchmarks/train_throughput.py --model /tmp/llama-1b-shape --steps 30 --batch-size 8 \
  --seq-len 1024 --out "$OUT/train-throughput.json" 2>&1 | tail -20 | tee -a "$OUT/train-throughput.txt"

# 3. The notebook cells that only run on CUDA: the calibration harness (06_calibrate) and QLoRA training (08_train).
for nb in nbs/estimate/03_calibrate.ipynb nbs/train/05_stages.ipynb; do
  timeout $(( $(left) / 2 > 10 ? $(left) / 2 : 10 )) python3 /tmp/site/bin/nbdev-test --flags cuda "$nb" 2>&1 | tail -25 | tee -a "$OUT/cuda-cells.txt"
done
echo "gpu_check.sh done in ${SECONDS} s" | tee -a "$OUT/gpu.txt"

"""Measure the training configurations the shared H200 grids never measured, on one CUDA GPU (about 5 minutes).

Each configuration runs 5 Hugging Face Trainer steps through `lmtune.train.measure.measure` (random weights built on the
GPU, random token ids; the protocol of ../shared/calibration/README.md; PEFT methods through the trainer's own PEFT
configs) and is appended, one JSON line each, to benchmarks/results/<gpu>-grid.jsonl, which
`lmtune.estimate.calibrate.load_measurements`, benchmarks/time_accuracy.py and benchmarks/estimator_accuracy.py read.

What the grid adds to the 44 shared rows: prefix tuning, IA3, freeze and BitFit (never measured), DoRA on a second
architecture, Liger kernels on and off (pairs with rows that exist), paged optimizers and torch's foreach AdamW on full
weights, fp16 (loss scaling), gradient accumulation, a 32k-token context, a sliding window that forces SDPA's masked
kernel (Gemma 3 at S > 512), and architectures never measured (SmolLM2, TinyLlama, Qwen3, Gemma 3, Phi-4-mini,
GPT-2 medium, Qwen3-8B, and a second mixture of experts, Qwen3-30B-A3B), plus the regimes the model finds hardest:
few tokens per step (CPU-bound), Mistral's window at 8k (SDPA's masked kernel), QLoRA on a new architecture.
Ordered by importance and cost, so that a short budget still measures the most.

Usage:
    python benchmarks/gpu_calibration.py --dry-run [--gpu H200]   # the list, predictions and the time it needs (no GPU)
    python benchmarks/gpu_calibration.py [--out FILE] [--only NAME ...] [--budget-s 330]
On the offline GPU machine, install the wheels first (see ../shared/gpu/README.md) and set PYTHONPATH.
"""
import argparse, os, shlex, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))

# name, model, settings (RunSettings fields). Liger pairs: the '-liger' row and the row without it (here or shared).
GRID = [
    ('l1-prefix-b8s1024',                'llama-3.2-1b', dict(method='prefix', batch_size=8, seq_len=1024)),
    ('l1-ia3-b8s1024',                   'llama-3.2-1b', dict(method='ia3', batch_size=8, seq_len=1024)),
    ('l1-freeze2-b8s1024',               'llama-3.2-1b', dict(method='freeze', trainable_layers=2, batch_size=8, seq_len=1024)),
    ('q05-bitfit-b8s1024',               'qwen2.5-0.5b', dict(method='bitfit', batch_size=8, seq_len=1024)),
    ('l1-lora-liger-gc-b4s2048',         'llama-3.2-1b', dict(method='lora', batch_size=4, seq_len=2048, gradient_checkpointing=True, use_liger_kernel=True)),
    ('l1-full-bf16-liger-b8s1024',       'llama-3.2-1b', dict(method='full', precision='bf16', batch_size=8, seq_len=1024, use_liger_kernel=True)),
    ('qwen3-0.6b-lora-b8s2048',          'qwen3-0.6b',   dict(method='lora', batch_size=8, seq_len=2048)),
    ('qwen3-0.6b-lora-liger-b8s2048',    'qwen3-0.6b',   dict(method='lora', batch_size=8, seq_len=2048, use_liger_kernel=True)),
    ('l1-full-bf16-paged8bit-b4s1024',   'llama-3.2-1b', dict(method='full', precision='bf16', optim='paged_adamw_8bit', batch_size=4, seq_len=1024)),
    ('l1-full-bf16-paged32bit-b4s1024',  'llama-3.2-1b', dict(method='full', precision='bf16', optim='paged_adamw_32bit', batch_size=4, seq_len=1024)),
    ('l1-full-bf16-adamwtorch-b4s1024',  'llama-3.2-1b', dict(method='full', precision='bf16', optim='adamw_torch', batch_size=4, seq_len=1024)),
    ('l1-full-fp16-b4s1024',             'llama-3.2-1b', dict(method='full', precision='fp16', batch_size=4, seq_len=1024)),
    ('l1-lora-ga4-b2s1024',              'llama-3.2-1b', dict(method='lora', batch_size=2, seq_len=1024, gradient_accumulation_steps=4)),
    ('q05-dora-b8s1024',                 'qwen2.5-0.5b', dict(method='dora', batch_size=8, seq_len=1024)),
    ('smollm2-135m-lora-b8s2048',        'smollm2-135m', dict(method='lora', batch_size=8, seq_len=2048)),
    ('gemma3-1b-lora-gc-b4s2048',        'gemma-3-1b',   dict(method='lora', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('tinyllama-full-bf16-gc-b4s2048',   'tinyllama-1.1b', dict(method='full', precision='bf16', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('gpt2m-full-bf16-b16s1024',         'gpt2-medium',  dict(method='full', precision='bf16', batch_size=16, seq_len=1024)),
    ('l1-lora-gc-b1s32768',              'llama-3.2-1b', dict(method='lora', batch_size=1, seq_len=32768, gradient_checkpointing=True)),
    ('q15-ia3-gc-b4s2048',               'qwen2.5-1.5b', dict(method='ia3', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('l3-prefix-gc-b2s2048',             'llama-3.2-3b', dict(method='prefix', batch_size=2, seq_len=2048, gradient_checkpointing=True)),
    ('l3-freeze4-b4s2048',               'llama-3.2-3b', dict(method='freeze', trainable_layers=4, batch_size=4, seq_len=2048)),
    ('phi4mini-lora-liger-gc-b4s1024',   'phi-4-mini',   dict(method='lora', batch_size=4, seq_len=1024, gradient_checkpointing=True, use_liger_kernel=True)),
    ('phi4mini-lora-gc-b4s1024',         'phi-4-mini',   dict(method='lora', batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ('smollm2-1.7b-full-mixed-gc-b4s2048', 'smollm2-1.7b', dict(method='full', precision='mixed', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('olmoe-lora-gc-b8s2048',            'olmoe-1b-7b',  dict(method='lora', batch_size=8, seq_len=2048, gradient_checkpointing=True)),
    ('l8-dora-gc-b1s2048',               'llama-3.1-8b', dict(method='dora', batch_size=1, seq_len=2048, gradient_checkpointing=True)),
    ('qwen3-8b-lora-gc-b4s2048',         'qwen3-8b',     dict(method='lora', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('l1-lora-b1s512',                   'llama-3.2-1b', dict(method='lora', batch_size=1, seq_len=512)),
    ('q05-full-bf16-b2s512',             'qwen2.5-0.5b', dict(method='full', precision='bf16', batch_size=2, seq_len=512)),
    ('m7-lora-gc-b1s8192',               'mistral-7b',   dict(method='lora', batch_size=1, seq_len=8192, gradient_checkpointing=True)),
    ('qwen3-30b-a3b-lora-gc-b1s2048',    'qwen3-30b-a3b', dict(method='lora', batch_size=1, seq_len=2048, gradient_checkpointing=True)),
    ('qwen3-8b-qlora-gc-b2s2048',        'qwen3-8b',     dict(method='qlora', batch_size=2, seq_len=2048, gradient_checkpointing=True)),
]

MEASURED_STEPS = 5          # steps per configuration (lmtune.train.measure.measure's default)
FIXED_S = 4.0               # per configuration: Trainer set-up and the first step's warm-up beyond a step (shared rows: 1-3 s)
BUILD_S_PER_GB = 0.3        # building random weights on the GPU, per GB of weights (shared rows' load_s: 0.5 s for 16 GB)
QLORA_S_PER_GB = 1.4        # QLoRA's save, reload in 4-bit and prepare, per GB of bf16 weights (shared rows: 21 s for 16 GB)


def predictions(gpu, grid):
    "Predicted peak memory and step time of every grid entry on `gpu`."
    from lmtune.estimate.calibrate import predict
    return {name: predict(model, gpu=gpu, **s) for name, model, s in grid}


def wall_seconds(model, settings, step_s):
    "Predicted wall time of measuring one configuration: build, set-up and warm-up, `MEASURED_STEPS` steps."
    from lmtune.catalog import model_spec
    gb = model_spec(model).num_params * 2 / 1e9
    build = gb * (QLORA_S_PER_GB if settings.get('method') == 'qlora' else BUILD_S_PER_GB)
    return build + FIXED_S + MEASURED_STEPS * step_s


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='list the configurations, their predictions and the time they need; no GPU needed')
    ap.add_argument('--gpu', default=None, help='catalog GPU for predictions (default: the CUDA device; H200 for --dry-run on a machine without one)')
    ap.add_argument('--out', default=None, help='output jsonl (default: benchmarks/results/<gpu>-grid.jsonl)')
    ap.add_argument('--only', nargs='*', default=None, help='measure only these names')
    ap.add_argument('--budget-s', type=float, default=330, help='start no new configuration after this many seconds')
    ap.add_argument('--headroom', type=float, default=0.92, help='skip configs predicted above this fraction of GPU memory')
    a = ap.parse_args(argv)
    from lmtune.catalog import gpu_spec
    from lmtune.catalog import catalog_gpu
    from lmtune.train.measure import run_grid

    gpu = a.gpu
    if gpu is None and not a.dry_run:
        import torch
        if torch.cuda.is_available():
            dev = torch.cuda.get_device_name()
            gpu = catalog_gpu(dev)
            if gpu is None: raise SystemExit(f"{dev!r} is not in lmtune's GPU catalog: pass --gpu <closest catalog GPU> "
                                             f"to predict for it, or add a catalog.GPU entry")
    gpu = gpu_spec(gpu or 'H200').name
    if a.only:
        unknown = set(a.only) - {g[0] for g in GRID}
        if unknown: raise SystemExit(f"--only: unknown names {sorted(unknown)}; known: {[g[0] for g in GRID]}")
    grid = [g for g in GRID if a.only is None or g[0] in a.only]
    pred = predictions(gpu, grid)
    mem = gpu_spec(gpu).memory_bytes
    import datetime, platform
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')
    where = 'predictions only, no GPU used' if a.dry_run else f"{os.cpu_count()} CPU cores, {gpu}"
    print(f"$ python {shlex.join(['benchmarks/gpu_calibration.py'] + argv)}   # {stamp}, {platform.machine()}, {where}")
    print(f"{len(grid)} configurations, predictions for {gpu} ({mem/2**30:.0f} GiB); wall = build + {FIXED_S:.0f} s set-up/warm-up + {MEASURED_STEPS} steps")
    print(f"{'name':36s} {'model':14s} {'pred GiB':>8s} {'pred step':>9s} {'wall':>6s} {'cum':>6s}  settings")
    keep, cum = [], 0.0
    for name, model, s in grid:
        p = pred[name]
        gib = p.get('device_total_bytes', 0) / 2**30
        fits = p.get('device_total_bytes', 0) <= a.headroom * mem
        w = wall_seconds(model, s, p['step_s'])
        if fits: cum += w
        print(f"{name:36s} {model:14s} {gib:8.1f} {p['step_s']*1e3:7.0f}ms {w:5.0f}s {cum:5.0f}s  {s}{'' if fits else '  [skipped: predicted not to fit]'}")
        if fits: keep.append((name, model, s))
    within = sum(1 for i in range(len(keep)) if sum(wall_seconds(m, s, pred[n]['step_s']) for n, m, s in keep[:i + 1]) <= a.budget_s)
    print(f"predicted: {cum:.0f} s for all {len(keep)}; {within} of them start within --budget-s {a.budget_s:.0f}")
    if a.dry_run: return
    out = a.out or os.path.join(HERE, 'results', f"{gpu.lower()}-grid.jsonl")
    t0 = time.time()
    for name, model, s in keep:
        if time.time() - t0 > a.budget_s:
            print(f"budget of {a.budget_s:.0f} s spent; not measured: {name}"); continue
        run_grid(out, [dict(model=model, name=name, **s)], gpu=gpu)
    print(f"measured in {time.time() - t0:.0f} s; rows appended to {out}")


if __name__ == '__main__': main()

"""Measure a grid of new training configurations on one CUDA GPU (about 6 minutes on an H100/H200).

Each configuration runs 5 Hugging Face Trainer steps through `lmtune.calibrate.measure` (random weights built on the
GPU, random token ids; protocol of /work/shared/calibration/README.md) and is appended, one JSON line each, to
benchmarks/results/<gpu>-grid.jsonl, which `lmtune.cost.load_measurements`, benchmarks/time_accuracy.py and
benchmarks/estimator_accuracy.py read. The grid varies architecture (incl. ones absent from the first grid: Qwen3,
Gemma-3, Phi-4-mini, SmolLM2), method, batch, sequence length, gradient checkpointing, optimizer and attention.

Usage:
    python benchmarks/gpu_calibration.py --dry-run [--gpu H100-SXM]   # list configs with predictions (no GPU needed)
    python benchmarks/gpu_calibration.py [--out FILE] [--only NAME ...] [--budget-s 420]
On the offline GPU machine, install the wheels first (see /work/shared/gpu/README.md) and set PYTHONPATH.
"""
import argparse, os, shlex, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))

# name, model, settings. Ordered cheap to expensive so that a short budget still measures the most.
GRID = [
    ('gpt2-full-bf16-b16s1024',          'gpt2',         dict(method='full', batch_size=16, seq_len=1024)),
    ('smollm2-135m-lora-b8s2048',        'smollm2-135m', dict(method='lora', batch_size=8, seq_len=2048)),
    ('qwen3-0.6b-full-mixed-gc-b8s2048', 'qwen3-0.6b',   dict(method='full', precision='mixed', batch_size=8, seq_len=2048, gradient_checkpointing=True)),
    ('q05-lora-r64-b8s1024',             'qwen2.5-0.5b', dict(method='lora', lora_r=64, batch_size=8, seq_len=1024)),
    ('l1-full-bf16-adamwtorch-b4s1024',  'llama-3.2-1b', dict(method='full', optim='adamw_torch', batch_size=4, seq_len=1024)),
    ('l1-lora-eager-b2s1024',            'llama-3.2-1b', dict(method='lora', attn_implementation='eager', batch_size=2, seq_len=1024)),
    ('l1-freeze4-b8s1024',               'llama-3.2-1b', dict(method='freeze', trainable_layers=4, batch_size=8, seq_len=1024)),
    ('l1-qlora-b8s1024',                 'llama-3.2-1b', dict(method='qlora', batch_size=8, seq_len=1024)),
    ('l1-full-bf16-gc-b1s8192',          'llama-3.2-1b', dict(method='full', batch_size=1, seq_len=8192, gradient_checkpointing=True)),
    ('gemma3-1b-lora-gc-b4s2048',        'gemma-3-1b',   dict(method='lora', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('q15-full-bf16-gc-b4s2048',         'qwen2.5-1.5b', dict(method='full', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('l3-dora-gc-b2s1024',               'llama-3.2-3b', dict(method='lora', use_dora=True, batch_size=2, seq_len=1024, gradient_checkpointing=True)),
    ('q3b-qlora-gc-b4s2048',             'qwen2.5-3b',   dict(method='qlora', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
    ('phi4mini-lora-gc-b4s1024',         'phi-4-mini',   dict(method='lora', batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ('l3-full-bf16-8bitadam-gc-b2s2048', 'llama-3.2-3b', dict(method='full', optim='adamw_bnb_8bit', batch_size=2, seq_len=2048, gradient_checkpointing=True)),
    ('olmoe-lora-gc-b4s1024',            'olmoe-1b-7b',  dict(method='lora', batch_size=4, seq_len=1024, gradient_checkpointing=True)),
    ('m7-lora-b8s512',                   'mistral-7b',   dict(method='lora', batch_size=8, seq_len=512)),
    ('l8-lora-qv-r8-gc-b2s4096',         'llama-3.1-8b', dict(method='lora', lora_r=8, lora_target_modules=['q_proj', 'v_proj'], batch_size=2, seq_len=4096, gradient_checkpointing=True)),
    ('qwen3-8b-lora-gc-b4s2048',         'qwen3-8b',     dict(method='lora', batch_size=4, seq_len=2048, gradient_checkpointing=True)),
]


def predictions(gpu):
    "Predicted peak memory and step time of every grid entry on `gpu`."
    from lmtune.calibrate import predict
    return {name: predict(model, gpu=gpu, **s) for name, model, s in GRID}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='list the configurations and their predictions; no GPU needed')
    ap.add_argument('--gpu', default=None, help='catalog GPU for predictions (default: the CUDA device; H100-SXM for --dry-run on a machine without one)')
    ap.add_argument('--out', default=None, help='output jsonl (default: benchmarks/results/<gpu>-grid.jsonl)')
    ap.add_argument('--only', nargs='*', default=None, help='measure only these names')
    ap.add_argument('--budget-s', type=float, default=420, help='start no new configuration after this many seconds')
    ap.add_argument('--headroom', type=float, default=0.92, help='skip configs predicted above this fraction of GPU memory')
    a = ap.parse_args(argv)
    from lmtune.catalog import gpu_spec
    from lmtune.calibrate import catalog_gpu, run_grid

    gpu = a.gpu
    if gpu is None and not a.dry_run:
        import torch
        if torch.cuda.is_available():
            dev = torch.cuda.get_device_name()
            gpu = catalog_gpu(dev)
            if gpu is None: raise SystemExit(f"{dev!r} is not in lmtune's GPU catalog: pass --gpu <closest catalog GPU> "
                                             f"to predict for it, or add a catalog.GPU entry")
    gpu = gpu_spec(gpu or 'H100-SXM').name
    grid = [g for g in GRID if a.only is None or g[0] in a.only]
    if a.only:
        unknown = set(a.only) - {g[0] for g in GRID}
        if unknown: raise SystemExit(f"--only: unknown names {sorted(unknown)}; known: {[g[0] for g in GRID]}")
    pred = predictions(gpu)
    mem = gpu_spec(gpu).memory_bytes
    print(f"$ python {shlex.join(['benchmarks/gpu_calibration.py'] + (argv if argv is not None else sys.argv[1:]))}")
    print(f"{len(grid)} configurations, predictions for {gpu} ({mem/2**30:.0f} GiB)")
    print(f"{'name':36s} {'model':14s} {'pred GiB':>8s} {'pred step':>9s}  settings")
    keep = []
    for name, model, s in grid:
        p = pred[name]
        gib = p.get('device_total_bytes', 0) / 2**30
        fits = p.get('device_total_bytes', 0) <= a.headroom * mem
        print(f"{name:36s} {model:14s} {gib:8.1f} {p['step_s']*1e3:7.0f}ms  {s}{'' if fits else '  [skipped: predicted not to fit]'}")
        if fits: keep.append((name, model, s))
    if a.dry_run: return
    out = a.out or os.path.join(HERE, 'results', f"{gpu.lower()}-grid.jsonl")
    t0 = time.time()
    for name, model, s in keep:
        if time.time() - t0 > a.budget_s:
            print(f"budget of {a.budget_s:.0f} s spent; not measured: {name}"); continue
        run_grid(out, [dict(model=model, name=name, **s)], gpu=gpu)
    print(f"measured in {time.time() - t0:.0f} s; rows appended to {out}")


if __name__ == '__main__': main()

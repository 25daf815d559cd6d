"""Peak GPU memory per rank of `lmtune train` against lmtune's estimate, on one GPU and on all GPUs of the machine.

    python benchmarks/gpu_distributed.py --out DIR      # starts torchrun itself, once per strategy and GPU count

Each launch trains a ~100M-parameter Llama (built locally: the device has no network) for a few steps with
`lmtune.train.launch.train`, the function every `lmtune train` process runs, plus a callback that records
`torch.cuda.max_memory_allocated()` on every rank. The driver prints, per launch and rank, the measured peak next to
`estimate_memory(...).peak_allocated` for the settings that launch ran, and writes them to DIR/gpu-distributed.jsonl.
With two or more GPUs it also tries the Trainer on a tensor-parallel model (transformers' DistributedConfig)."""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

MODEL = 'tiny:llama?hidden_size=1024&num_layers=8&num_heads=16&num_kv_heads=8&intermediate_size=2816&vocab_size=4096'
STRATEGIES = ('ddp', 'fsdp', 'zero2', 'zero3')

def run_file(strategy, out):
    from lmtune.train.launch import config_yaml
    return config_yaml('continued', MODEL, 'builtin:general?n=4000', dict(method='full', batch_size=4, seq_len=512, strategy=strategy,
                       max_steps=6, logging_steps=1, save_steps=1000, output_dir=str(out), progress_bar=False, resume=False))

def worker(path, out):
    "One rank: train with a peak-memory callback, write this rank's peak."
    import torch
    from transformers import TrainerCallback
    from lmtune.train.launch import read_config, train, processes
    class Peak(TrainerCallback):
        def on_train_end(self, args, state, control, **kw):
            p = processes()
            Path(out).with_suffix(f'.rank{p.rank}.json').write_text(json.dumps(dict(rank=p.rank, peak_allocated=torch.cuda.max_memory_allocated(),
                                                                                       peak_reserved=torch.cuda.max_memory_reserved())))
    train(read_config(path), callbacks=[Peak()])

def tensor_parallel(out):
    "Rank of a TP run: the Trainer on a model loaded with DistributedConfig(tp_size=world)."
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.distributed import DistributedConfig
    from lmtune.train.launch import resolve_model, processes
    from lmtune.corpus import general_corpus
    import lmtune.train.stages as T
    d, p = resolve_model(MODEL), processes()
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, distributed_config=DistributedConfig(tp_size=p.world_size))
    r = T.continue_pretraining(m, general_corpus(2000), tokenizer=AutoTokenizer.from_pretrained(d), method='full', max_steps=4,
                               batch_size=4, seq_len=512, logging_steps=1, output_dir=str(out), progress_bar=False, resume=False)
    if p.is_main: print('TP losses', [round(x['loss'], 4) for x in r.losses], flush=True)

def main():
    a = argparse.ArgumentParser(); a.add_argument('--out', default='benchmarks/results'); a.add_argument('--worker', nargs=2); a.add_argument('--tp')
    args = a.parse_args()
    if args.worker: return worker(*args.worker)
    if args.tp: return tensor_parallel(args.tp)
    import torch, importlib.util
    from lmtune.train.launch import read_config, launched_settings, Processes, resolve_model
    from lmtune.estimate.memory import estimate_memory
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count()
    model_dir = resolve_model(MODEL)                           # built once, before any launch
    rows = []
    for st in STRATEGIES:
        if st.startswith('zero') and importlib.util.find_spec('deepspeed') is None: print(f'{st}: DeepSpeed not installed, skipped'); continue
        for n in sorted({1, gpus}):
            tag = f'{st}-{n}gpu'; run = out / f'gpu-distributed-{tag}.yaml'
            run.write_text(run_file(st, Path('/tmp/lmtune-gpu-dist') / tag))
            t = time.time()
            r = subprocess.run(['torchrun', '--nproc_per_node', str(n), __file__, '--worker', str(run), str(out / f'peak-{tag}')],
                               capture_output=True, text=True, timeout=240)
            c = read_config(run)
            s, _ = launched_settings(c, Processes(world_size=n, local_world_size=n))
            est = estimate_memory(model_dir, s, stage=c.stage)
            peaks = [json.loads(f.read_text()) for f in sorted(out.glob(f'peak-{tag}.rank*.json'))]
            for p in peaks:
                rows.append(dict(strategy=st, gpus=n, rank=p['rank'], measured=p['peak_allocated'], estimated=est.peak_allocated,
                                 ratio=est.peak_allocated / p['peak_allocated'], seconds=round(time.time() - t, 1)))
                print(f"{st:6} {n} GPU(s) rank {p['rank']}: measured {p['peak_allocated'] / 2**30:6.2f} GiB, estimated "
                      f"{est.peak_allocated / 2**30:6.2f} GiB (estimate/measured {rows[-1]['ratio']:.2f})", flush=True)
            if r.returncode or not peaks: print(f'{tag} FAILED (exit {r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}', flush=True)
    with open(out / 'gpu-distributed.jsonl', 'a') as f:
        for row in rows: f.write(json.dumps(row) + '\n')
    if gpus >= 2:
        r = subprocess.run(['torchrun', '--nproc_per_node', str(gpus), __file__, '--tp', '/tmp/lmtune-gpu-dist/tp'], capture_output=True, text=True, timeout=240)
        print(r.stdout[-800:] if r.returncode == 0 else f'tensor parallel Trainer FAILED:\n{r.stderr[-3000:]}', flush=True)
    else: print('tensor parallelism: one GPU here, the Trainer check needs two or more (still owed)')

if __name__ == '__main__': main()

"""lmtune's memory model under FSDP against PyTorch's FSDP2 memory tracer (tests/trace_fsdp.py: a real transformers
Llama at Llama-3.1-8B's width on a fake process group, traced on the CPU; forward and backward of the first step).

Prints, per world size, precision and depth, the traced peak, lmtune's first-step peak and their ratio. CPU kernels
keep other temporaries than CUDA's (the loss, SDPA), so the ratio includes that unmeasured offset.

Usage:
    python benchmarks/fsdp_trace.py [--out benchmarks/results/fsdp_trace.txt]
"""
import argparse, datetime, json, os, platform, subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests'))
from test_trace_fsdp import estimated   # the same estimate the test compares

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT / 'benchmarks/results/fsdp_trace.txt'))
    a = ap.parse_args()
    lines = [f"$ python benchmarks/fsdp_trace.py   # {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, {os.cpu_count()} CPU cores, {platform.machine()}",
             f"{'world':>5s} {'precision':>9s} {'layers':>6s} {'traced GiB':>10s} {'lmtune GiB':>10s} {'ratio':>6s}"]
    for layers in (4, 32):
        for world in (64, 512):
            for precision in ('bf16', 'mixed'):
                out = subprocess.run([sys.executable, str(ROOT / 'tests/trace_fsdp.py'), str(world), precision, str(layers)],
                                     capture_output=True, text=True, check=True)
                t = json.loads(out.stdout.strip().splitlines()[-1])['Total']
                e = estimated(world, precision, layers).peak_allocated_first_step
                lines.append(f"{world:5d} {precision:>9s} {layers:6d} {t/2**30:10.2f} {e/2**30:10.2f} {e/t:6.2f}"); print(lines[-1], flush=True)
    Path(a.out).write_text('\n'.join(lines) + '\n')

if __name__ == '__main__': main()

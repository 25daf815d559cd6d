"""Accuracy of `lmtune.estimate.trace.trace_memory` (PyTorch's MemTracker on fake tensors, CPU kernels) against the real
H200 runs of the calibration grids, next to the analytic `estimate_memory` on the same rows.

Every row the tracer can build is traced: one GPU, full or LoRA/DoRA (not QLoRA: bitsandbytes needs CUDA), torch's
AdamW. The error of the traced peak allocated memory against the measured one is what a traced estimate's range
(`lmtune.estimate.memory.ACCURACY['traced']`) must cover.

Usage:
    python benchmarks/trace_accuracy.py [--max-rows N] [--out benchmarks/results/trace_accuracy.txt]
"""
import argparse, datetime, os, platform, statistics, time
from lmtune.estimate.calibrate import read_measurements
from lmtune.estimate.memory import estimate_memory
from lmtune.estimate.trace import TRACE_OPTIMIZERS, trace_memory

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--max-rows', type=int, default=None, help='trace at most this many rows (the first ones of each grid)')
    ap.add_argument('--out', default='benchmarks/results/trace_accuracy.txt')
    a = ap.parse_args()
    rows = [m for m in read_measurements() if m.row.get('method') in ('full', 'lora', 'dora') and m.settings.optim in TRACE_OPTIMIZERS
            and not m.settings.use_liger_kernel]
    rows = rows[:a.max_rows] if a.max_rows else rows
    lines = [f"$ python benchmarks/trace_accuracy.py{f' --max-rows {a.max_rows}' if a.max_rows else ''}   # "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, {os.cpu_count()} CPU cores, {platform.machine()}",
             f"{'row':34s} {'measured':>9s} {'traced':>9s} {'error':>7s} {'formula':>9s} {'error':>7s} {'trace s':>7s}"]
    errs, ferrs, secs = [], [], []
    for m in rows:
        meas = m.row['peak_alloc_bytes']
        t0 = time.perf_counter()
        try: t = trace_memory(m.config, m.settings).peak_allocated
        except ValueError as e:   # e.g. a row measured with an attention the installed transformers refuses
            lines.append(f"{m.name:34s} refused: {str(e).splitlines()[0][:110]}"); print(lines[-1], flush=True); continue
        secs.append(time.perf_counter() - t0)
        f = estimate_memory(m.config, m.settings).peak_allocated
        errs.append(t / meas - 1); ferrs.append(f / meas - 1)
        lines.append(f"{m.name:34s} {meas/2**30:8.2f}G {t/2**30:8.2f}G {errs[-1]:+7.1%} {f/2**30:8.2f}G {ferrs[-1]:+7.1%} {secs[-1]:7.1f}")
        print(lines[-1], flush=True)
    for label, e in (("traced", errs), ("formula (same rows)", ferrs)):
        a_ = [abs(x) for x in e]
        lines.append(f"{label:22s} peak allocated: median |error| {statistics.median(a_):5.1%}, worst {max(a_):5.1%}, over {len(a_)} rows")
    lines.append(f"trace time per row: median {statistics.median(secs):.1f} s, worst {max(secs):.1f} s")
    text = '\n'.join(lines) + '\n'
    print('\n'.join(lines[-3:]))
    open(a.out, 'w').write(text)

if __name__ == '__main__': main()

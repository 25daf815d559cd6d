"""Step-time accuracy of `lmtune.estimate.time` against measured Hugging Face Trainer runs, on configurations the constants
were not fitted on.

Reads every calibration grid (default: all `*.jsonl` in `lmtune.estimate.calibrate.calibration_dir()`, i.e. the two shared
H200 grids, 44 rows) and prints, for every row, the measured step time (median of steps 2-5) and:

- the prediction with the shipped constants (`lmtune.estimate.time.CALIBRATED`, fitted on all rows: in-sample);
- the leave-architecture-out prediction: the constants refitted on every row of the *other* architectures, then used
  on this row's architecture (all of its rows held out at once);
- the leave-method-out prediction: the same with whole methods (full, lora, qlora, dora, ...) held out.

The held-out numbers are the honest estimate for architectures and methods the model has not seen. The counts of the
model (FLOPs, bytes, kernels, ops per block) are not fitted: only the seven `Throughput` constants are.

Usage:
    python benchmarks/time_accuracy.py [--data FILE.jsonl ...] [--no-held-out] [--out benchmarks/results/time_accuracy.txt]
"""
import argparse, datetime, os, platform, shlex, statistics, sys, time

from lmtune.estimate.calibrate import calibration_dir
from lmtune.estimate.time import CALIBRATED, step_breakdown
from lmtune.estimate.calibrate import fit_throughput, held_out_errors, load_measurements, predict_rows


def summary(label, errs):
    a = [abs(e) for e in errs]
    return (f"{label:34s} median |error| {statistics.median(a):5.1%}, worst {max(a):5.1%}, "
            f"within 10%: {sum(e <= 0.10 for e in a)}/{len(a)}, within 20%: {sum(e <= 0.20 for e in a)}/{len(a)}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', nargs='+', default=None, help='calibration jsonl files (default: every grid in the calibration folder)')
    ap.add_argument('--no-held-out', action='store_true', help='skip the leave-architecture-out and leave-method-out refits')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results', 'time_accuracy.txt'))
    a = ap.parse_args(argv)
    paths = a.data or sorted(str(p) for p in calibration_dir().glob('*.jsonl'))
    missing = [p for p in paths if not os.path.exists(p)]
    if not paths or missing: raise SystemExit(f"calibration data not found: {missing or calibration_dir()}; pass --data or set LMTUNE_CALIBRATION")
    rows = load_measurements(paths)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')
    lines = [f"$ python {shlex.join(['benchmarks/time_accuracy.py'] + argv)}   # {stamp}, {os.cpu_count()} CPU cores, {platform.machine()}, no GPU needed",
             f"data: {', '.join(os.path.relpath(p) for p in paths)} ({len(rows)} rows, "
             f"{len({r['arch'] for r in rows})} architectures, methods {sorted({r['method'] for r in rows})})",
             f"shipped constants: {CALIBRATED}", ""]
    pred = predict_rows(rows, CALIBRATED)
    refit = fit_throughput(rows)
    lines.append(f"refit on all rows:  {refit}")
    arch = meth = [None] * len(rows)
    if not a.no_held_out:
        t0 = time.time()
        arch, meth = held_out_errors(rows, 'arch'), held_out_errors(rows, 'method')
        lines.append(f"held-out refits: {len({r['arch'] for r in rows}) + len({r['method'] for r in rows})} fits in {time.time() - t0:.0f} s")
    head = f"{'row':32s} {'arch':13s} {'method':6s} {'measured':>9s} {'predicted':>9s} {'error':>7s} {'arch out':>8s} {'meth out':>8s}  bound"
    lines += ['', head, '-' * len(head)]
    for r, p, ea, em in zip(rows, pred, arch, meth):
        b = step_breakdown(r['run'], r['gpu'])
        f = lambda e: f"{e:+8.1%}" if e is not None else f"{'—':>8s}"
        lines.append(f"{r['name']:32s} {r['arch']:13s} {r['method']:6s} {r['measured']*1e3:7.1f}ms {p*1e3:7.1f}ms {p/r['measured']-1:+7.1%} "
                     f"{f(ea)} {f(em)}  {'CPU' if b['cpu_bound'] else 'GPU'}")
    lines += ['', summary('in-sample (shipped constants):', [p / r['measured'] - 1 for p, r in zip(pred, rows)])]
    if not a.no_held_out:
        lines += [summary('leave-architecture-out:', arch), summary('leave-method-out:', meth)]
    text = '\n'.join(lines)
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, 'w').write(text + '\n')


if __name__ == '__main__': main()

"""Step-time accuracy of `lmtune.cost` against measured Hugging Face Trainer runs.

For every row of a calibration jsonl (default: the shared H200 grid) this prints the measured step time (median of
steps 2-5), the prediction with the shipped constants (`lmtune.cost.CALIBRATED`), and the leave-one-out prediction:
the five constants refitted on all the other rows, then used on the held-out row. The leave-one-out error is the
honest estimate for configurations the model has not seen.

Usage:
    python benchmarks/time_accuracy.py [--data FILE.jsonl ...] [--no-loo] [--out benchmarks/results/time_accuracy.txt]
"""
import argparse, os, shlex, statistics, sys, time

from lmtune.calibrate import calibration_dir
from lmtune.cost import CALIBRATED, fit_throughput, load_measurements, predict_rows, step_breakdown


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', nargs='+', default=[str(calibration_dir() / 'h200-trainer-grid1.jsonl')], help='calibration jsonl files (rows with step_s)')
    ap.add_argument('--no-loo', action='store_true', help='skip the leave-one-out refits (about 8 s each)')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'results', 'time_accuracy.txt'))
    a = ap.parse_args(argv)
    missing = [p for p in a.data if not os.path.exists(p)]
    if missing: raise SystemExit(f"calibration data not found: {missing}; pass --data or set LMTUNE_CALIBRATION to the folder")
    rows = [r for path in a.data for r in load_measurements(path)]
    lines = [f"$ python {shlex.join(['benchmarks/time_accuracy.py'] + (argv if argv is not None else sys.argv[1:]))}",
             f"data: {', '.join(a.data)} ({len(rows)} rows)", f"constants: {CALIBRATED}", ""]
    pred = predict_rows(rows, CALIBRATED)
    loo = [None] * len(rows)
    if not a.no_loo:
        t0 = time.time()
        for i in range(len(rows)):
            rest = rows[:i] + rows[i + 1:]
            loo[i] = predict_rows([rows[i]], fit_throughput(rest))[0]
        lines.append(f"leave-one-out: {len(rows)} refits in {time.time() - t0:.0f} s")
    head = f"{'row':34s} {'gpu':9s} {'measured':>9s} {'predicted':>9s} {'error':>7s} {'LOO pred':>9s} {'LOO err':>7s}  bound"
    lines += [head, '-' * len(head)]
    for r, p, l in zip(rows, pred, loo):
        b = step_breakdown(r['spec'], r['run'], r['gpu'])
        lo = f"{l*1e3:7.1f}ms {l/r['measured']-1:+7.1%}" if l is not None else f"{'—':>9s} {'—':>7s}"
        lines.append(f"{r['name']:34s} {r['gpu']:9s} {r['measured']*1e3:7.1f}ms {p*1e3:7.1f}ms {p/r['measured']-1:+7.1%} {lo}  "
                     f"{'CPU' if b['cpu_bound'] else 'GPU'}")
    err = [abs(p / r['measured'] - 1) for p, r in zip(pred, rows)]
    lines += ['', f"in-sample (shipped constants): median |error| {statistics.median(err):.1%}, worst {max(err):.1%}, "
                  f"within 15%: {sum(e <= 0.15 for e in err)}/{len(err)}"]
    if not a.no_loo:
        le = [abs(l / r['measured'] - 1) for l, r in zip(loo, rows)]
        lines.append(f"leave-one-out:                  median |error| {statistics.median(le):.1%}, worst {max(le):.1%}, "
                     f"within 15%: {sum(e <= 0.15 for e in le)}/{len(le)}")
    text = '\n'.join(lines)
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, 'w').write(text + '\n')


if __name__ == '__main__': main()

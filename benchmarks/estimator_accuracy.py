"""Accuracy and speed of `lmtune.estimate.memory.estimate_memory` against measured training runs.

Loads every measurement row (JSON lines with `peak_alloc_bytes`, see ../shared/calibration/README.md) from
`--data` (default: ../shared/calibration/*.jsonl plus benchmarks/results/*.jsonl), predicts each run and prints
measured vs predicted peak allocated / reserved memory, per-row errors and a summary; then times one call and checks
that `import lmtune.estimate.memory` leaves torch out of sys.modules.

    python benchmarks/estimator_accuracy.py [--data GLOB ...] [--calls 2000]
"""
import argparse, glob, json, os, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
GiB = 2**30

def load_rows(patterns):
    "Measured runs (`lmtune.estimate.calibrate.Measurement`) of every file matching `patterns`."
    from lmtune.estimate.calibrate import read_measurements
    return [m for m in read_measurements(patterns) if "peak_alloc_bytes" in m.row]

def predict(m):
    from lmtune.estimate.memory import estimate_memory
    return estimate_memory(m.config, m.settings)

def naive(m):
    "'Transformer Math' style: 16 bytes/param (full) or 2 bytes/param + 16 bytes/trainable (PEFT) + activations sbh(34+5as/h)."
    from lmtune.catalog import model_spec
    r = m.row
    sp = model_spec(m.config)
    N, s, b, h, L, a = sp.num_params, r["seq"], r["batch"], sp.hidden_size, sp.num_layers, sp.num_heads
    T = r.get("trainable", N)
    w = 16*N if r["method"] == "full" else (0.5 if r["method"] == "qlora" else 2)*N + 16*T
    act = s*b*h*L*(34 + 5*a*s/h) if not r["gc"] else 2*s*b*h*L
    return w + act

def main():
    ap = argparse.ArgumentParser()
    cal = os.environ.get("LMTUNE_CALIBRATION") or os.path.join(ROOT, "..", "shared", "calibration")
    ap.add_argument("--data", nargs="*", default=[os.path.join(cal, "*.jsonl"),
                                                  os.path.join(HERE, "results", "*.jsonl")])
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    rows = load_rows(args.data)
    if not rows: sys.exit(f"no measurement rows found in {args.data} (set LMTUNE_CALIBRATION to the calibration folder)")
    print(f"{len(rows)} measured runs from {sorted({os.path.relpath(m.source, ROOT) for m in rows})}\n")
    hdr = f"{'run':<32}{'meas alloc':>11}{'pred alloc':>11}{'err%':>7}{'meas res':>10}{'pred res':>10}{'err%':>7}{'step1 err%':>11}{'load err%':>10}{'naive err%':>11}"
    print(hdr); print("-"*len(hdr))
    ea, er, e0, el, en = [], [], [], [], []
    for m in rows:
        r = m.row
        e = predict(m)
        ma, mr = r["peak_alloc_bytes"], r["peak_reserved_bytes"]
        da, dr = 100*(e.peak_allocated/ma - 1), 100*(e.peak_reserved/mr - 1)
        # step_peaks are raw allocator peaks; peak_alloc_bytes had the memory allocated before the model subtracted
        off = max(r["step_peaks"]) - ma if r.get("step_peaks") else 0
        d0 = 100*(e.peak_allocated_first_step/(r["step_peaks"][0] - off) - 1) if r.get("step_peaks") else float("nan")
        dl = 100*(e.after_load/r["after_load_bytes"] - 1) if r.get("after_load_bytes") else float("nan")
        dn = 100*(naive(m)/ma - 1)
        ea.append(da); er.append(dr); e0.append(d0); el.append(dl); en.append(dn)
        print(f"{r['name']:<32}{ma/GiB:>11.2f}{e.peak_allocated/GiB:>11.2f}{da:>+7.1f}{mr/GiB:>10.2f}{e.peak_reserved/GiB:>10.2f}{dr:>+7.1f}{d0:>+11.1f}{dl:>+10.1f}{dn:>+11.1f}")
    med = lambda xs: statistics.median(abs(x) for x in xs)
    print("-"*len(hdr))
    for name, xs in (("peak allocated", ea), ("peak reserved", er), ("first-step peak (no optimizer states)", e0),
                     ("after load (weights+adapters)", el), ("naive 16 B/param + sbh(34+5as/h)", en)):
        print(f"{name:<40} median |error| {med(xs):5.1f}%   worst |error| {max(abs(x) for x in xs):5.1f}%")
    # speed
    from lmtune.estimate.memory import estimate_memory
    from lmtune.catalog import model_spec
    for label, c in (("catalog name", "llama-3.1-8b"), ("ModelSpec", model_spec("llama-3.1-8b"))):
        estimate_memory(c, method="lora", batch_size=4, seq_len=2048, gradient_checkpointing=True)
        t = time.perf_counter()
        for _ in range(args.calls): estimate_memory(c, method="lora", batch_size=4, seq_len=2048, gradient_checkpointing=True)
        print(f"estimate_memory speed ({label}): {1e6*(time.perf_counter()-t)/args.calls:.0f} us per call (mean of {args.calls})")
    out = subprocess.run([sys.executable, "-c", "import sys, lmtune.estimate.memory; print(sorted(m for m in ('torch','transformers','peft') if m in sys.modules))"],
                         capture_output=True, text=True, cwd=ROOT)
    print(f"heavy modules imported by `import lmtune.estimate.memory`: {out.stdout.strip() or out.stderr.strip()}")

if __name__ == "__main__": main()

"""How long a change to a widget control takes in the kernel: recompute and redraw (target: <= 50 ms, median).

A scripted sequence of control changes runs on an `EstimatorWidget` and an `AdvisorWidget` inside a real IPython
kernel (started with jupyter_client, so every widget update goes out as comm messages on the kernel's iopub, as in
Jupyter). For each change it times

- the redraw: from setting the control's value to the end of its observer (the estimate or the advice recomputed,
  every output widget set and the static copy refreshed);
- the details that follow it (largest batch and sequence, the fixes when the run does not fit), which the widget
  computes `DETAILS_DELAY_S` after the last change from the browser; here they are forced at once with `settle()`;

and, to justify drawing the memory bar as HTML, one matplotlib PNG of the same bar (a reused figure, artists updated).

Usage:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/widget_latency.py [--repeats 3] [--out FILE]
"""
import argparse, datetime, json, os, platform, sys, textwrap

KERNEL_CODE = r'''
import json, statistics, time
from lmtune.settings import RunSettings
from lmtune.ui.widgets import AdvisorWidget, EstimatorWidget

def timed(widget, changes, details):
    rows = []
    for name, value in changes:
        t0 = time.perf_counter(); widget.controls[name].value = value; t1 = time.perf_counter()
        deferred = details and widget._pending is not None
        if details: widget.settle()
        t2 = time.perf_counter()
        rows.append(dict(change=f"{name}={value!r}", redraw_ms=(t1 - t0) * 1e3, details_ms=(t2 - t1) * 1e3, deferred=deferred,
                         verdict=getattr(widget.result, "verdict", None) if details else None, error=widget.error))
    return rows

w = EstimatorWidget("llama-3.1-8b", RunSettings(batch_size=4, seq_len=2048), gpu="A100-80GB")
EST = [("batch_size", 8), ("batch_size", 2), ("batch_size", 1), ("seq_len", 4096), ("seq_len", 1024), ("gradient_checkpointing", True),
       ("batch_size", 16), ("method", "qlora"), ("lora_r", 64), ("method", "full"), ("optim", "adamw_8bit"), ("gpu", "H100-SXM"),
       ("num_gpus", 4), ("strategy", "zero3"), ("offload_optimizer", True), ("strategy", "fsdp"), ("num_gpus", 8), ("gpu", "RTX-4090"),
       ("model", "qwen2.5-7b"), ("method", "lora"), ("seq_len", 8192), ("model", "llama-3.1-70b"), ("gpu", "H200"),
       ("model", "qwen3-30b-a3b"), ("data_tokens", "1e9"), ("num_epochs", 3.0), ("usd_per_hour", "2.5"), ("model", "llama-3.1-8b"),
       ("num_gpus", 1), ("strategy", "ddp"), ("offload_optimizer", False), ("gradient_checkpointing", False), ("batch_size", 4),
       ("seq_len", 0), ("seq_len", 2048)]
ADV = [("labeled_examples", "500"), ("goal", "knowledge"), ("domain_tokens", "3e9"), ("num_gpus", 8), ("budget_usd", "20000"),
       ("goal", "fresh-facts"), ("domain_tokens", ""), ("goal", "task"), ("labeled_examples", "50000"), ("model", "llama-3.1-70b"),
       ("gpu", "RTX-4090"), ("num_gpus", 1), ("model", "qwen2.5-7b"), ("goal", "alignment"), ("preference_pairs", "10000"),
       ("gpu", "H100-SXM"), ("goal", "new-language"), ("domain_tokens", "5e8"), ("labeled_examples", "many"), ("labeled_examples", "2000")]
a = AdvisorWidget()
est, adv = [], []
for _ in range(REPEATS):
    est += timed(w, EST, details=True)
    adv += timed(a, ADV, details=False)

def mpl_bar_ms(n=20):
    "One PNG of the memory bar with matplotlib, the figure reused and its artists updated."
    import io
    import matplotlib; matplotlib.use("agg")
    from matplotlib.figure import Figure
    from lmtune.estimate.memory import estimate_memory
    m = estimate_memory("llama-3.1-8b", RunSettings(batch_size=4, seq_len=2048))
    fig = Figure(figsize=(6.4, 1.0), dpi=100); ax = fig.add_axes((0.02, 0.35, 0.96, 0.6))
    vals = [v / 2**30 for v in m.breakdown.values()]
    rects, left = [], 0.
    for v in vals: rects += ax.barh([0], [v], left=left).patches; left += v
    ax.axvline(79.15, color="k", ls="--"); ax.set_yticks([])
    out = []
    for i in range(n):
        s, left = 1 + (i % 5) / 10, 0.
        t0 = time.perf_counter()
        for r, v in zip(rects, vals): r.set_x(left); r.set_width(v * s); left += v * s
        ax.set_xlim(0, left * 1.05); fig.savefig(io.BytesIO(), format="png")
        out.append((time.perf_counter() - t0) * 1e3)
    return out

print("RESULT " + json.dumps(dict(estimator=est, advisor=adv, matplotlib_png_ms=mpl_bar_ms(), repeats=REPEATS)))
'''


def run_in_kernel(code:str, timeout:float=900)->dict:
    "Run `code` in a fresh python3 kernel and return the JSON it prints after 'RESULT '."
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3", env=dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="agg"))
    out, err = [], []
    try:
        reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: (
            out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else
            err.append("\n".join(m["content"].get("traceback", []))) if m["msg_type"] == "error" else None))
        if reply["content"]["status"] != "ok": raise RuntimeError("kernel code failed:\n" + "\n".join(err))
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    line = next(l for l in "".join(out).splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def stats(xs:list)->str:
    xs = sorted(xs)
    if not xs: return "n/a"
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    return f"median {q(0.5):7.1f} ms   p90 {q(0.9):7.1f} ms   max {xs[-1]:7.1f} ms   (n={len(xs)})"


def report(r:dict, cmd:str)->str:
    est, adv = r["estimator"], r["advisor"]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    head = f"$ {cmd}   # {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), load average {load[0]:.1f} at the end, Python {platform.python_version()}"
    nofit = [x for x in est if x["verdict"] not in ("fits", None) and not x["error"]]
    lines = [head, "",
             "Each row: the time from setting a control's value to the end of its observer, in a real IPython kernel",
             "(comm messages to the frontend included). Target: redraw <= 50 ms, median.", "",
             f"EstimatorWidget redraw (estimate_memory + estimate_time + every output widget + static copy):",
             f"  all changes            {stats([x['redraw_ms'] for x in est])}",
             f"EstimatorWidget details (largest batch/seq_len; fixes when it does not fit), after the redraw:",
             f"  all changes            {stats([x['details_ms'] for x in est])}",
             f"  run does not fit       {stats([x['details_ms'] for x in nofit])}",
             f"  deferred to the event loop in the kernel: {sum(x['deferred'] for x in est)} of {len(est)} changes",
             f"AdvisorWidget redraw (advise() + card; the advisor keeps costed stages, so repeats are faster):",
             f"  first pass             {stats([x['redraw_ms'] for x in adv[:len(adv) // r['repeats']]])}",
             f"  all passes             {stats([x['redraw_ms'] for x in adv])}",
             f"matplotlib PNG of the same bar (reused figure, artists updated): {stats(r['matplotlib_png_ms'])}",
             "", "Per change (first repeat): redraw ms, details ms, verdict or error"]
    for x in est[:35]:
        lines.append(f"  est  {x['change']:<32} {x['redraw_ms']:7.1f} {x['details_ms']:8.1f}  {x['error'] and ('error: ' + x['error'][:60]) or x['verdict']}")
    for x in adv[:20]:
        lines.append(f"  adv  {x['change']:<32} {x['redraw_ms']:7.1f}           {x['error'] and ('error: ' + x['error'][:60]) or 'ok'}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="times the scripted sequence runs")
    p.add_argument("--out", help="also write the report here (e.g. benchmarks/results/widget_latency.txt)")
    a = p.parse_args()
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/widget_latency.py" + (f" --repeats {a.repeats}" if a.repeats != 3 else "") \
          + (f" --out {a.out}" if a.out else "")
    text = report(run_in_kernel(f"REPEATS = {a.repeats}\n" + KERNEL_CODE), cmd)
    print(text, end="")
    if a.out:
        with open(a.out, "w") as f: f.write(text)

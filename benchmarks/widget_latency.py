"""How long a change to a widget control takes in the kernel (target: redraw <= 30 ms median), and how long "Setup as
code" takes to open (target: <= 0.3 s).

A scripted sequence of control changes (a few of them invalid on purpose) runs on an `EstimatorWidget` and an `AdvisorWidget` inside a real IPython
kernel (started with jupyter_client, so every widget update goes out as comm messages on the kernel's iopub, as in
Jupyter). For each change it times

- the redraw: from setting the control's value to the end of its observer (the estimate or the advice recomputed,
  every output widget set and the static copy refreshed);
- the details that follow it (largest batch and sequence, the fixes when the run does not fit), which the widget
  computes `DETAILS_DELAY_S` after the last change from the browser; here they are forced at once with `settle()`;

and, to justify drawing the memory bar as HTML, one matplotlib PNG of the same bar (a reused figure, artists updated).

Then, on a fresh estimator in the same kernel, "Setup as code": opening the section (the `lmtune.train` call), the
other formats, the TRL format (its note at once, then torch and PEFT loading in the background, then the code), and
reopening once they are loaded; in fresh processes, what opening cost when every format was written at once, and how
fast an unknown hub id fails with HF_HUB_OFFLINE set; and in the kernel, how long the model box takes to show a sign
for a hub id that does not answer.

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
       ("num_gpus", 4), ("strategy", "zero3"), ("offload_optimizer", True), ("offload_params", True), ("strategy", "fsdp"),
       ("num_gpus", 8), ("gpu", "RTX-4090"), ("model", "qwen2.5-7b"), ("method", "lora"), ("seq_len", 8192),
       ("model", "llama-3.1-70b"), ("gpu", "H200"), ("model", "qwen3-30b-a3b"), ("data_tokens", "1e9"), ("num_epochs", 3.0),
       ("usd_per_hour", "2.5"), ("model", "llama-3.1-8b"), ("num_gpus", 1), ("strategy", "zero3"), ("offload_params", False),
       ("offload_optimizer", False), ("strategy", "ddp"), ("gradient_checkpointing", False), ("batch_size", 4),
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

def setup_as_code():
    "Seconds to open 'Setup as code' and switch formats, on a fresh estimator (the TRL format's libraries load in the background)."
    import sys
    heavy = lambda: [m for m in ("torch", "transformers", "peft") if m in sys.modules]
    w = EstimatorWidget("llama-3.1-8b", RunSettings(method="qlora", batch_size=4, seq_len=2048), gpu="A100-80GB")
    out = dict(loaded_before=heavy())
    t = time.perf_counter(); w._setup.selected_index = 0; out["open"] = time.perf_counter() - t
    out["open_shows"] = w._code.value.splitlines()[1]
    for fmt in ("launch", "run.yaml"):
        t = time.perf_counter(); w._code_pick.value = fmt; out[fmt] = time.perf_counter() - t
    out["loaded_after_light_formats"] = heavy()
    t = time.perf_counter(); w._code_pick.value = "TRL / transformers + PEFT"; out["trl_note"] = time.perf_counter() - t
    out["trl_note_text"] = w._code.value
    job = w._code_job
    if job is not None:                  # the kernel's loop is blocked by this cell: wait for the thread, then write as its callback does
        job.done.wait(600); out["trl_libraries_loaded"] = job.elapsed
        t = time.perf_counter(); w._code_loaded(job); out["trl_write"] = time.perf_counter() - t
    out["trl_ok"] = "SFTConfig(" in w._code.value
    w._setup.selected_index = None; w.controls["batch_size"].value = 2
    t = time.perf_counter(); w._setup.selected_index = 0; out["reopen_trl_loaded"] = time.perf_counter() - t
    t = time.perf_counter(); w._code_pick.value = "lmtune.train"; out["back_to_lmtune_train"] = time.perf_counter() - t
    return out

def hub_sign():
    "Seconds until the model box shows a sign for a hub id that does not answer (offline here: no network)."
    w = EstimatorWidget("llama-3.1-8b", RunSettings(batch_size=4, seq_len=2048), gpu="A100-80GB")
    t = time.perf_counter(); w.controls["model"].value = "someone/not-on-the-hub"
    return dict(seconds=time.perf_counter() - t, looking_up=w.looking_up, error=w.error)

est_result = dict(estimator=est, advisor=adv, matplotlib_png_ms=mpl_bar_ms(), repeats=REPEATS)
est_result["setup"] = setup_as_code()
est_result["hub"] = hub_sign()     # last: the lookup goes on retrying in the background
print("RESULT " + json.dumps(est_result))
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


COLD_ALL_FORMATS = r'''
import json, time
from lmtune.settings import RunSettings
from lmtune.ui.code import setup_code
t = time.perf_counter(); setup_code("llama-3.1-8b", RunSettings(method="qlora", batch_size=4, seq_len=2048), gpu="A100-80GB")
print(json.dumps(time.perf_counter() - t))
'''
OFFLINE_HUB = r'''
import json, time
from lmtune.ui.widgets import EstimatorWidget
w = EstimatorWidget("llama-3.1-8b", batch_size=4, seq_len=2048)
t = time.perf_counter(); w.controls["model"].value = "someone/not-on-the-hub"
print(json.dumps(dict(seconds=time.perf_counter() - t, error=w.error)))
'''


def in_fresh_process(code:str, **env)->object:
    "The JSON a fresh `python -c code` prints (its environment: this one, with `env`)."
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **env))
    return json.loads(out.stdout.strip().splitlines()[-1])


def stats(xs:list)->str:
    xs = sorted(xs)
    if not xs: return "n/a"
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    return f"median {q(0.5):7.1f} ms   p90 {q(0.9):7.1f} ms   max {xs[-1]:7.1f} ms   (n={len(xs)})"


def report(r:dict, cmd:str)->str:
    est, adv, su, hub = r["estimator"], r["advisor"], r["setup"], r["hub"]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    head = (f"$ {cmd}   # {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), load average {r['load_start']:.1f} at the start "
            f"and {load[0]:.1f} at the end (other jobs share the cores), Python {platform.python_version()}")
    nofit = [x for x in est if x["verdict"] not in ("fits", None) and not x["error"]]
    lines = [head, "",
             "Each row: the time from setting a control's value to the end of its observer, in a real IPython kernel",
             "(comm messages to the frontend included). Target: redraw <= 30 ms, median.", "",
             f"EstimatorWidget redraw (estimate_memory + estimate_time + every output widget + static copy):",
             f"  all changes            {stats([x['redraw_ms'] for x in est])}",
             f"  changes drawn (valid)  {stats([x['redraw_ms'] for x in est if not x['error']])}",
             f"EstimatorWidget details (largest batch/seq_len; fixes when it does not fit), after the redraw:",
             f"  all changes            {stats([x['details_ms'] for x in est])}",
             f"  run does not fit       {stats([x['details_ms'] for x in nofit])}",
             f"  deferred to the event loop in the kernel: {sum(x['deferred'] for x in est)} of {len(est)} changes",
             f"AdvisorWidget redraw (advise() + card; the advisor keeps costed stages, so repeats are faster):",
             f"  first pass             {stats([x['redraw_ms'] for x in adv[:len(adv) // r['repeats']]])}",
             f"  all passes             {stats([x['redraw_ms'] for x in adv])}",
             f"matplotlib PNG of the same bar (reused figure, artists updated): {stats(r['matplotlib_png_ms'])}",
             "", "Setup as code (target: open <= 0.3 s), on a fresh estimator in the same kernel, QLoRA on llama-3.1-8b:",
             f"  open the section (shows {su['open_shows']!r})   {su['open'] * 1e3:7.1f} ms"
             f"   (torch/transformers/peft loaded before: {su['loaded_before'] or 'none'}; after the light formats: "
             f"{su['loaded_after_light_formats'] or 'none'})",
             f"  switch to launch / run.yaml                     {su['launch'] * 1e3:7.1f} / {su['run.yaml'] * 1e3:.1f} ms",
             f"  switch to TRL: its note shows in                {su['trl_note'] * 1e3:7.1f} ms   ({su['trl_note_text'][:60]!r})",
             f"    torch and PEFT load in the background in      {su.get('trl_libraries_loaded', 0):7.2f} s   (the kernel stays free)",
             f"    then the TRL code is written in               {su.get('trl_write', 0) * 1e3:7.1f} ms   (SFTConfig in it: {su['trl_ok']})",
             f"  reopen on TRL, libraries loaded                 {su['reopen_trl_loaded'] * 1e3:7.1f} ms",
             f"  back to the lmtune.train call                   {su['back_to_lmtune_train'] * 1e3:7.1f} ms",
             f"  before (every format written on opening), a fresh process: {r['cold_all_formats']:.2f} s",
             "", "Model box, a hub id that does not answer:",
             f"  in the kernel (no network here): sign after     {hub['seconds'] * 1e3:7.1f} ms   (looking up: {hub['looking_up']!r}; "
             f"error: {hub['error']!r})",
             f"  HF_HUB_OFFLINE=1, a fresh process: message after {r['offline_hub']['seconds'] * 1e3:6.1f} ms   "
             f"({(r['offline_hub']['error'] or '')[:70]!r}...)",
             "", "Per change (first repeat): redraw ms, details ms, verdict or error"]
    for x in est[:len(est) // r["repeats"]]:
        lines.append(f"  est  {x['change']:<32} {x['redraw_ms']:7.1f} {x['details_ms']:8.1f}  {x['error'] and ('error: ' + x['error'][:60]) or x['verdict']}")
    for x in adv[:len(adv) // r["repeats"]]:
        lines.append(f"  adv  {x['change']:<32} {x['redraw_ms']:7.1f}           {x['error'] and ('error: ' + x['error'][:60]) or 'ok'}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="times the scripted sequence runs")
    p.add_argument("--out", help="also write the report here (e.g. benchmarks/results/widget_latency.txt)")
    a = p.parse_args()
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/widget_latency.py" + (f" --repeats {a.repeats}" if a.repeats != 3 else "") \
          + (f" --out {a.out}" if a.out else "")
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    r = run_in_kernel(f"REPEATS = {a.repeats}\n" + KERNEL_CODE)
    r["load_start"] = load_start
    r["cold_all_formats"] = in_fresh_process(COLD_ALL_FORMATS)
    r["offline_hub"] = in_fresh_process(OFFLINE_HUB, HF_HUB_OFFLINE="1")
    text = report(r, cmd)
    print(text, end="")
    if a.out:
        with open(a.out, "w") as f: f.write(text)

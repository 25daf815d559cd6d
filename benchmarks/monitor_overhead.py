"""What the forgetting monitor costs at its default settings, everything counted, on the tiny CPU runs a new user meets
first: the README's monitored LoRA example and the two fine-tunes of `lmtune demo`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor_overhead.py   # writes benchmarks/results/monitor_overhead.txt

The runs are the same code, not a copy of it:
- README: the README's Python block that builds a `ForgettingMonitor` runs as written (`exec`, in a temporary folder);
- demo: `lmtune.ui.demo.run_demo` runs whole (pretraining, then the full and the LoRA fine-tune, each watched by a
  monitor), with its monitors at their defaults: any `eval_every` the demo passes is dropped (`--demo-as-is` keeps
  what the demo sets: today `task_metric='exact_match'` and the default cadence) because the question is what the
  defaults cost.

Two clocks, both wall time:
- the benchmark's own: the seconds spent inside the monitor's trainer callbacks (`on_train_begin`, `on_step_end`,
  `on_log`, `on_save`, `on_train_end`), plus the checkpoints only the monitor asked for; training = the time from
  `on_train_begin` to the end of `on_train_end` minus that;
- the monitor's own (what its view shows): `monitor.overhead`, its seconds by part over the training seconds without
  them. Monitors without that accounting (before it existed) are split here by timing their functions instead.
Other jobs may share the machine's cores, so single timings move by tens of percent; the load average is printed.
It also measures the peak memory of one full evaluation against `lmtune.estimate.memory.monitor_memory_bytes` (the peak
of live tensor bytes, with a torch dispatch mode on the CPU: the same tensors a GPU would hold), unless `--no-memory`.
"""
from __future__ import annotations
import argparse, contextlib, datetime, functools, os, platform, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ("on_train_begin", "on_step_end", "on_log", "on_save", "on_train_end")

class Clock:
    "Times the monitor's callbacks, its requested checkpoints, and (for monitors without `overhead`) its parts."
    def __init__(self): self.runs, self.cur = [], None

    def new(self, mon):
        self.cur = dict(monitor=mon, callbacks=0.0, saves=[], begin=None, end=None, parts={})
        self.runs.append(self.cur)

    def add(self, key, dt): self.cur["parts"][key] = self.cur["parts"].get(key, 0.0) + dt

@contextlib.contextmanager
def instrumented(clock:Clock, keep_eval_every:bool=True):
    "Patch the monitor class and the trainer's checkpoint save with timers; undo on exit."
    import lmtune.train.monitor as M
    from transformers import Trainer
    undo = []
    def patch(obj, name, wrap):
        old = getattr(obj, name); setattr(obj, name, wrap(old)); undo.append((obj, name, old))
    Base = M.ForgettingMonitor
    class Timed(Base): # the demo imports ForgettingMonitor from the module at call time: it gets this one
        def __init__(self, *a, **kw):
            if not keep_eval_every: kw.pop("eval_every", None)
            super().__init__(*a, **kw)
    Timed.__name__ = Base.__name__
    patch(M, "ForgettingMonitor", lambda old: Timed)
    for ev in EVENTS:
        def wrap(old, ev=ev):
            @functools.wraps(old)
            def f(self, *a, **kw):
                if ev == "on_train_begin": clock.new(self)
                t = time.perf_counter()
                if ev == "on_train_begin": clock.cur["begin"] = t
                try: return old(self, *a, **kw)
                finally:
                    clock.cur["callbacks"] += time.perf_counter() - t
                    if ev == "on_train_end": clock.cur["end"] = time.perf_counter()
            return f
        patch(Base, ev, wrap)
    def wrap_save(old):
        @functools.wraps(old)
        def f(self, *a, **kw):
            t = time.perf_counter()
            try: return old(self, *a, **kw)
            finally:
                if clock.cur is not None and clock.cur["end"] is None: # the monitor's own: it asked (and waits to time it)
                    clock.cur["saves"].append((clock.cur["monitor"]._save_pending is not None, time.perf_counter() - t))
        return f
    patch(Trainer, "_save_checkpoint", wrap_save)
    if not hasattr(Base, "overhead"): # a monitor from before its own accounting: split its time by timing its functions
        stack = [] # exclusive times: a nested part's seconds are not its caller's
        def timed(key_of):
            def wrap(old):
                @functools.wraps(old)
                def f(*a, **kw):
                    stack.append(0.0); t = time.perf_counter()
                    try: return old(*a, **kw)
                    finally:
                        dt = time.perf_counter() - t; inner = stack.pop()
                        clock.add(key_of(*a, **kw), dt - inner)
                        if stack: stack[-1] += dt
                return f
            return wrap
        suite = lambda: clock.cur["monitor"].suite
        patch(M, "greedy_answers", timed(lambda m, tok, prompts, *a, **kw: "probes" if prompts is suite().probe_prompts else
                                         "generation" if prompts is suite().prompts else "baseline"))
        patch(Base, "_prompting_baseline", timed(lambda *a, **kw: "baseline"))
        patch(Base, "_measure", timed(lambda self, m, s, base_model=False: "base measurement" if base_model else "evaluations"))
    try: yield
    finally:
        for obj, name, old in reversed(undo): setattr(obj, name, old)

def account(run:dict)->dict:
    "Training seconds, the monitor's seconds (independent clock) and its split by part."
    mon = run["monitor"]
    mine = sum(dt for ours, dt in run["saves"] if ours)
    total = run["callbacks"] + mine
    train = run["end"] - run["begin"] - total
    if hasattr(mon, "overhead"):
        o = mon.overhead
        parts, self_train, self_monitor = dict(o["parts"]), o["train_seconds"], o["monitor_seconds"]
    else: # before: the parts timed here; the rest of the callbacks' time is the view and logging
        order = ("base measurement", "baseline", "evaluations", "generation", "probes")
        parts = {k: run["parts"].get(k, 0.0) for k in order}
        parts["checkpoints"] = mine
        parts["other (view, logging)"] = max(total - sum(parts.values()), 0.0)
        self_monitor = mon._monitor_s # what its table's monitor_overhead divides, over the training seconds it divides by
        self_train = self_monitor / mon.rows[-1]["monitor_overhead"] if mon.rows[-1].get("monitor_overhead") else float("nan")
    return dict(train=train, monitor=total, parts=parts, self_train=self_train,
                self_monitor=self_monitor, evals=[r["step"] for r in mon.rows], notes=getattr(mon, "notes", []))

def lines_for(name:str, a:dict)->list[str]:
    out = [f"{name}: training {a['train']:.1f} s; the monitor {a['monitor']:.2f} s = {a['monitor'] / a['train']:.1%} of training "
           f"(the benchmark's clock); the monitor's own clock: {a['self_monitor']:.2f} s over {a['self_train']:.1f} s = "
           f"{a['self_monitor'] / a['self_train']:.1%}; evaluations at steps {a['evals']}",
           f"  {'part':34s} {'seconds':>8s} {'% of training':>14s}"]
    for k, v in a["parts"].items(): out.append(f"  {k:34s} {v:8.2f} {v / a['self_train']:14.1%}")
    out += [f"  note: {n}" for n in a["notes"] if "budget" in n.lower() or "skipped" in n.lower() or "overhead" in n.lower()]
    return out

def readme_block()->str:
    "The README's Python block that builds a ForgettingMonitor, as written."
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if "ForgettingMonitor(" in b)

def run_readme(clock:Clock)->dict:
    code = readme_block()
    with tempfile.TemporaryDirectory() as d, instrumented(clock):
        cwd = os.getcwd(); os.chdir(d)
        try: exec(compile(code, "README.md", "exec"), {})
        finally: os.chdir(cwd)
    return account(clock.runs[-1])

def figure_seconds(mon, n:int=3)->list[float]:
    "Seconds to draw the monitor's figure (`png()`), `n` times: the live view's figure is what this costs."
    out = []
    for _ in range(n):
        t = time.perf_counter(); mon.png(); out.append(time.perf_counter() - t)
    return out

def run_demo(clock:Clock, as_is:bool)->dict:
    from lmtune.ui.demo import run_demo as demo
    with tempfile.TemporaryDirectory() as d, instrumented(clock, keep_eval_every=as_is):
        n = len(clock.runs)
        demo(out=d)
    return {lab: account(r) for lab, r in zip(("full fine-tune", "LoRA r=16"), clock.runs[n:])}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-demo", action="store_true", help="only the README example")
    ap.add_argument("--demo-as-is", action="store_true", help="keep the demo's monitor settings (default: drop its eval_every)")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory of one evaluation against the formula")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor_overhead.txt"))
    a = ap.parse_args()
    import torch
    load = lambda: " ".join(f"{x:.1f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = " + uncommitted changes" if subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "nbs/train/07_monitor.ipynb",
                                                      "lmtune/train/monitor.py"], capture_output=True, text=True).stdout.strip() else ""
    cmd = "$ OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "?") + " .venv/bin/python benchmarks/monitor_overhead.py " + " ".join(sys.argv[1:])
    lines = [f"{cmd.rstrip()}   # {datetime.date.today().isoformat()}, {platform.machine()} CPU, {os.cpu_count()} cores (shared), "
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), commit {commit}{dirty}, load average at start {load()}", ""]
    clock, t0 = Clock(), time.perf_counter()
    lines += lines_for("README example (LoRA, 40 steps, ForgettingMonitor(**builtin_inputs(), max_kl=0.5))", run_readme(clock))
    print("\n".join(lines), flush=True)
    if not a.no_demo:
        what = "as the demo sets them (task_metric='exact_match', default cadence)" if a.demo_as_is else "default monitor settings"
        for lab, acc in run_demo(clock, a.demo_as_is).items():
            lines += [""] + lines_for(f"lmtune demo, {lab} (150 steps, {what})", acc)
    figs = figure_seconds(clock.runs[0]["monitor"])
    lines += ["", "Drawing the monitor's figure (matplotlib, six panels, PNG): " + ", ".join(f"{x:.2f}" for x in figs) + " s"]
    if not a.no_memory:
        lines += ["", "Memory of one monitor evaluation (tiny Llama, fp32, 8 general texts x 64 tokens per batch):"]
        memory(lines)
    lines.append(f"({time.perf_counter() - t0:.0f} s in all; load average at the end {load()})")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

def live_bytes_tracker(existing=()):
    "A torch dispatch mode that counts the bytes of tensor storages created inside it while they are alive, and their peak; `existing` tensors (weights, caches) are not new when an op returns a view of them."
    import weakref, torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from torch.utils.weak import WeakIdKeyDictionary
    class LiveBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__(); self.live = self.peak = 0; self.seen = WeakIdKeyDictionary()
            for t in existing: self.seen[t.untyped_storage()] = 0
        def _free(self, n): self.live -= n
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    if st not in self.seen and st.nbytes():
                        self.seen[st] = n = st.nbytes()
                        self.live += n; self.peak = max(self.peak, self.live)
                        weakref.finalize(st, self._free, n)
            return out
    return LiveBytes()

def memory(out:list):
    "Peak live bytes of one evaluation against the formula, LoRA (adapters disabled for the base) and full (cached base)."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import LoraConfig, get_peft_model
    from lmtune.corpus import general_corpus, multiple_choice_set, instruction_set
    from lmtune.models import tiny_model_dir
    from lmtune.train.monitor import EvalSuite, BaseReference
    from lmtune.estimate.memory import monitor_memory_phases, monitor_memory_bytes
    from lmtune.settings import RunSettings
    d = tiny_model_dir()
    tok = AutoTokenizer.from_pretrained(d)
    long_texts = [" ".join(general_corpus(12, seed=i)) for i in range(16)] # every text fills seq_len
    B, S = 8, 64
    for method in ("lora", "full"):
        model = AutoModelForCausalLM.from_pretrained(d).eval()
        if method == "lora": model = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear", task_type="CAUSAL_LM")).eval()
        suite = EvalSuite(tok, long_texts, multiple_choice_set(40, seed=1), instruction_set(40, seed=2), seq_len=S, batch_size=B, max_new_tokens=32)
        base = BaseReference.for_model(model, suite)
        suite.measure(model, base) # step 0: fills the cache (full fine-tuning)
        prompt_len = max(map(len, suite.prompts))
        existing = list(model.parameters()) + list(model.buffers()) + [t for v in base.cache.values() for t in (v if isinstance(v, tuple) else (v,))]
        with live_bytes_tracker(existing) as lb: suite.measure(model, base)
        s = RunSettings(method=method, precision="fp32", seq_len=S)
        phases = monitor_memory_phases(d, s, batch_size=B, max_new_tokens=32, prompt_len=prompt_len, gen_batch_size=32)
        formula = monitor_memory_bytes(d, s, batch_size=B, max_new_tokens=32, prompt_len=prompt_len)
        out.append(f"  {method} ({base.mode}): measured peak {lb.peak / 2**20:.2f} MiB of new tensors during one evaluation; "
                   f"formula {formula / 2**20:.2f} MiB ({formula / lb.peak:.2f}x the measurement); its phases: " +
                   ", ".join(f"{k} {v / 2**20:.2f}" for k, v in phases.items()) + " MiB")

if __name__ == "__main__": main()

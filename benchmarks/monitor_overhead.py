"""What the forgetting monitor costs: training wall time with and without `ForgettingMonitor` on the CPU with the tiny
model, and the extra memory of one evaluation against `lmtune.estimate.memory.monitor_memory_bytes`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor_overhead.py   # writes benchmarks/results/monitor_overhead.txt

Time: `lmtune.train.stages.sft` on the tiny Llama (hidden 128, 4 layers, vocab 1024, random weights, so every generation runs
to `max_new_tokens`) for STEPS steps, LoRA and full fine-tuning, without a monitor, with the monitor at its default
cadence ('auto', 5%) and with eval_every=50; held-out inputs `builtin_inputs()` (64 general texts, 40 multiple-choice
questions, 40 task examples, 3 of them few-shot examples) and the default settings otherwise. Other jobs share this
machine's 2 cores, so wall times swing by tens of percent from run to run; the main measure is the CPU time of the
whole `sft(...)` call (loading, tokenizing, training, saving: one thread, OMP_NUM_THREADS=1), which contention hardly
changes. The runs alternate, and the order is reversed on the repeat.

Memory: the peak of live tensor bytes during one full evaluation (`EvalSuite.measure`, generation included), measured
with a torch dispatch mode on the CPU (the same tensors a GPU would hold), minus the weights, against the formula.
"""
from __future__ import annotations
import argparse, datetime, os, platform, statistics, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = 300
COMMON = dict(batch_size=16, seq_len=64, logging_steps=10, save_steps=200, progress_bar=False, resume=False)
LR = {"lora": 2e-3, "full": 3e-4}

def timed_run(model_dir, method:str, monitor_kw:dict|None, steps:int):
    "`(CPU seconds, wall seconds, monitor or None)` of one whole sft call (loading, tokenizing, training, saving)."
    from lmtune.corpus import instruction_set
    from lmtune.train.monitor import ForgettingMonitor, builtin_inputs
    from lmtune.train.stages import sft
    mon = ForgettingMonitor(**builtin_inputs(), display="none", **monitor_kw) if monitor_kw is not None else None
    data = instruction_set(2000)
    t, c = time.perf_counter(), time.process_time()
    sft(str(model_dir), data, method=method, learning_rate=LR[method], max_steps=steps, output_dir=tempfile.mkdtemp(prefix="lmtune-ovh-"),
        callbacks=[mon] if mon else None, **COMMON)
    return time.process_time() - c, time.perf_counter() - t, mon

def overhead(model_dir, steps:int, reps:int, out:list):
    conditions = {"no monitor": None, "monitor, default ('auto')": {}, "monitor, eval_every=50": dict(eval_every=50)}
    for method in ("lora", "full"):
        cpu, wall, mons = {k: [] for k in conditions}, {k: [] for k in conditions}, {}
        for rep in range(reps):
            order = list(conditions) if rep % 2 == 0 else list(conditions)[::-1]
            for k in order:
                if k == "monitor, eval_every=50" and rep: continue # for information: one run
                c, w, mon = timed_run(model_dir, method, conditions[k], steps)
                cpu[k].append(c); wall[k].append(w)
                if mon: mons[k] = mon
                print(f"  {method} {k}: CPU {c:.1f} s, wall {w:.1f} s" + (f" ({len(mon.rows)} evaluations)" if mon else ""), flush=True)
        base, wbase = statistics.median(cpu["no monitor"]), statistics.median(wall["no monitor"])
        out.append(f"{method}, {steps} steps, no monitor: CPU {', '.join(f'{x:.1f}' for x in cpu['no monitor'])} s "
                   f"(median {base:.1f} s); wall {', '.join(f'{x:.1f}' for x in wall['no monitor'])} s")
        for k in list(conditions)[1:]:
            m, mon = statistics.median(cpu[k]), mons[k]
            evals = [r["monitor_seconds"] for r in mon.rows]
            out.append(f"  {k}: CPU {', '.join(f'{x:.1f}' for x in cpu[k])} s (median {m:.1f} s) -> CPU overhead {m / base - 1:+.1%}; "
                       f"wall {', '.join(f'{x:.1f}' for x in wall[k])} s ({statistics.median(wall[k]) / wbase - 1:+.1%}); "
                       f"{len(mon.rows)} evaluations at steps {[r['step'] for r in mon.rows]}; the monitor's own clock: {sum(evals):.1f} s "
                       f"= {mon.rows[-1]['monitor_overhead']:.1%} of the training loop (base with the prompting baseline {evals[0]:.1f} s, "
                       f"then {statistics.median(evals[1:]):.2f} s per evaluation)")
        b = mons["monitor, default ('auto')"].rows
        fixed = b[0]["monitor_seconds"] + b[-1]["monitor_seconds"]
        out.append(f"  the default cadence never measures less than the base and the end ({fixed:.1f} s wall here), so it stays within "
                   f"5% for runs whose training takes >= {fixed / 0.05:.0f} s at this speed")

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

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor_overhead.txt"))
    a = ap.parse_args()
    import torch
    from lmtune.models import tiny_model_dir
    cmd = "$ OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "?") + " .venv/bin/python benchmarks/monitor_overhead.py " + " ".join(sys.argv[1:])
    load = lambda: " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"{cmd.rstrip()}   # {datetime.date.today().isoformat()}, {platform.machine()} CPU, {os.cpu_count()} cores (shared), "
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average at start {load()}", ""]
    lines.append("Memory of one monitor evaluation (tiny Llama, fp32, 8 general texts x 64 tokens per batch):")
    memory(lines)
    lines += ["", f"Training time with and without the monitor (tiny Llama, sft, batch 16, {a.steps} steps):"]
    overhead(tiny_model_dir(), a.steps, a.reps, lines)
    lines.append(f"(load average at the end {load()}: other jobs shared the 2 cores, so single timings are noisy)")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__": main()

"""Do the changes `lmtune.plan.fit.fixes` proposes fit? The search now against the one it replaced, on a grid of runs.

For every run of the grid that does not fit its GPU (the estimate's verdict is not "fits"), both versions of `fixes`
are asked for changes, and each change they return is judged by the estimator itself:

- does it fit: `estimate_memory(...).verdict(gpu) == 'fits'` (the whole measured-error range under the GPU's memory);
- does it need more memory than the run it fixes (`MemoryEstimate.must_fit` higher);
- does it use more GPUs than the run asked for (no `max_gpus` is passed: a one-card question);
- is it a combination of changes;

and the wall time of each call is recorded. The replaced version is read from git (`git show REV:lmtune/plan/fit.py`,
default: the commit before the search) and imported next to the current one, so both use today's estimators.

Usage:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fixes_fit.py [--rev b600255] [--out FILE]
"""
import argparse, datetime, itertools, os, platform, statistics, subprocess, sys, time, types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ('llama-3.2-1b', 'llama-3.1-8b', 'qwen2.5-14b', 'llama-3.1-70b')
METHODS = ('full', 'lora', 'qlora')
BATCHES = (2, 8)
SEQ_LENS = (2048, 8192)
CHECKPOINTING = (False, True)
GPUS = ('RTX-4090', 'A100-40GB', 'H100-SXM')
TOKENS = 1e8


def old_fit(rev:str):
    "lmtune/plan/fit.py as of `rev`, imported as `lmtune.plan._fit_<rev>` (its relative imports: today's package)."
    import importlib
    importlib.import_module('lmtune.plan')   # the parent package, for the module's relative imports
    git = ['git', 'show', f'{rev}:lmtune/plan/fit.py']
    src = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    name = f'lmtune.plan._fit_{rev}'
    mod = types.ModuleType(name); mod.__package__ = 'lmtune.plan'; mod.__file__ = f'{rev}:lmtune/plan/fit.py'
    sys.modules[name] = mod
    exec(compile(src, mod.__file__, 'exec'), mod.__dict__)
    return mod


def judge(fn, model, s, gpu)->dict:
    "Call `fn` (a `fixes`) once and judge what it returns with the estimator."
    from lmtune.estimate.memory import estimate_memory
    before = estimate_memory(model, s)
    t0 = time.perf_counter(); out = list(fn(model, s, gpu, tokens=TOKENS)); ms = (time.perf_counter() - t0) * 1e3
    mems = [estimate_memory(model, f.settings) for f in out]
    own = [m.verdict(gpu) == 'fits' and f.settings.world_size == s.world_size and not f.changes_task
           for f, m in zip(out, mems)]   # fits on the run's own GPUs and keeps the task
    return dict(ms=ms, n=len(out), fit=sum(m.verdict(gpu) == 'fits' for m in mems), fit_own=sum(own),
                raise_mem=sum(m.must_fit >= before.must_fit for m in mems),
                more_gpus=sum(f.settings.world_size > s.world_size for f in out),
                combined=sum(' + ' in f.label for f in out), first_fits=bool(mems) and mems[0].verdict(gpu) == 'fits')


def run(rev:str)->dict:
    from lmtune.estimate.memory import estimate_memory
    from lmtune.plan.fit import fixes
    from lmtune.settings import RunSettings
    old = old_fit(rev).fixes
    rows = []
    for model, method, b, seq, gc, gpu in itertools.product(MODELS, METHODS, BATCHES, SEQ_LENS, CHECKPOINTING, GPUS):
        s = RunSettings(method=method, batch_size=b, seq_len=seq, gradient_checkpointing=gc)
        if estimate_memory(model, s).verdict(gpu) == 'fits': continue
        rows.append(dict(run=f"{model} {method} {b}x{seq} gc={gc} {gpu}", old=judge(old, model, s, gpu),
                         new=judge(fixes, model, s, gpu)))
    grid = len(MODELS) * len(METHODS) * len(BATCHES) * len(SEQ_LENS) * len(CHECKPOINTING) * len(GPUS)
    return dict(rows=rows, grid=grid)


def summary(rows:list, key:str)->list[str]:
    r = [x[key] for x in rows]
    n = sum(x['n'] for x in r)
    ms = sorted(x['ms'] for x in r)
    pct = lambda a, b: f"{a:5d} of {b:5d} ({100 * a / b:5.1f}%)" if b else f"{a:5d} of {b:5d}"
    return [f"  runs with at least one change returned   {pct(sum(x['n'] > 0 for x in r), len(r))}",
            f"  runs with a fit on their GPUs, task kept {pct(sum(x['fit_own'] > 0 for x in r), len(r))}",
            f"  runs whose first change fits             {pct(sum(x['first_fits'] for x in r), len(r))}",
            f"  changes returned                         {n:5d}",
            f"    that fit (the estimate's verdict)      {pct(sum(x['fit'] for x in r), n)}",
            f"    that need more memory than the run     {pct(sum(x['raise_mem'] for x in r), n)}",
            f"    that add GPUs (a one-GPU question)     {pct(sum(x['more_gpus'] for x in r), n)}",
            f"    combinations of several changes        {pct(sum(x['combined'] for x in r), n)}",
            f"  time per call: median {statistics.median(ms):.1f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, "
            f"max {ms[-1]:.1f} ms"]


def report(res:dict, cmd:str, rev:str)->str:
    rows = res['rows']
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    head = (f"$ {cmd}   # {datetime.date.today()}, {os.cpu_count()} cores, load average {load:.1f} at the end, "
            f"Python {platform.python_version()}")
    lines = [head, "",
             f"Grid: {', '.join(MODELS)} x {', '.join(METHODS)}",
             f"  x batch {BATCHES} x seq_len {SEQ_LENS} x checkpointing {CHECKPOINTING} x {', '.join(GPUS)}",
             f"  = {res['grid']} runs, of which {len(rows)} do not fit their GPU",
             f"(verdict not 'fits'). Each is given to fixes(model, run, gpu, tokens={TOKENS:g}) with no max_gpus;",
             "every change returned is judged by estimate_memory. 'Fit' means the estimate's verdict is 'fits' (its",
             "whole range under the GPU's memory).", "",
             f"fixes as of {rev} (single changes, then one greedy combination; its own test: 5% headroom):"]
    lines += summary(rows, 'old')
    lines += ["", "fixes now (beam search over combinations; changes that lower the estimate and fit):"]
    lines += summary(rows, 'new')
    lines += ["", "Runs where the replaced version returned no fitting change on the run's GPUs that",
              "keeps the task, and the search finds one:"]
    gained = [x for x in rows if x['old']['fit_own'] == 0 and x['new']['fit_own'] > 0]
    lost = [x for x in rows if x['old']['fit_own'] > 0 and x['new']['fit_own'] == 0]
    more = [x for x in rows if x['old']['fit'] > x['old']['fit_own'] and x['new']['fit_own'] == 0]
    lines += [f"  {len(gained)} runs, e.g. " + '; '.join(x['run'] for x in gained[:3])]
    lines += [f"Runs where the replaced version returned a fitting change and the search finds none: {len(lost)}"]
    lines += [f"  {x['run']}" for x in lost[:10]]
    lines += [f"Runs where only the replaced version's extra GPUs (up to 64) or shorter sequences fit: {len(more)}",
              "  (the search then says what would hold the run, and names the cheapest fix on more GPUs as a hint)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", default="b600255", help="the git revision whose fixes is compared")
    p.add_argument("--out", help="also write the report here (e.g. benchmarks/results/fixes_fit.txt)")
    a = p.parse_args()
    cmd = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fixes_fit.py"
           + (f" --rev {a.rev}" if a.rev != "b600255" else "") + (f" --out {a.out}" if a.out else ""))
    text = report(run(a.rev), cmd, a.rev)
    print(text, end="")
    if a.out: Path(a.out).write_text(text)

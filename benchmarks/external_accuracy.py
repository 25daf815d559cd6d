"""Accuracy of lmtune's estimators against measurements other people published (not lmtune's own H200 grid).

Reads the rows in `--data` (default: ../shared/external, see its README.md):

- `published-memory-time.jsonl`: peak memory (allocated, reserved or nvidia-smi), "fits or runs out of memory", the
  longest context that fits, and fine-tuning throughput, each measured with some framework (Hugging Face Trainer/PEFT,
  answer.ai's loop on HF models, litgpt, torchtune, ...);
- `published-training-runs.jsonl`: pretraining and fine-tuning runs with published GPU-hours or tokens/s per GPU.

For every row it predicts the quantity the row measured, from the row's `lmtune` description (model, `RunSettings`
fields, GPU):

- memory: `estimate_memory(...)` `.peak_allocated`, `.peak_reserved` or `.device_total` (nvidia-smi), by the row's
  `measured`; `GB` is read as 1e9 bytes and `GiB` as 2**30, as the row's `unit` says;
- fits / OOM: `MemoryEstimate.verdict(gpu)` (fits, borderline or does not fit: the estimate's range against the GPU); longest context: `lmtune.plan.fit.max_seq_len` on the row's GPU (a memory
  budget becomes a `GPU` with that memory);
- fine-tuning throughput: `estimate_time(...).tokens_per_second` per GPU;
- training runs: `estimate_time(..., tokens=row tokens)` on the hardware it ran on: GPU-hours = total_seconds / 3600 x
  GPUs (or tokens/s per GPU for the benchmark rows), and whether `estimate_memory` says the run fits on that GPU.

Errors are signed, predicted / measured - 1. Rows without an lmtune description, or with fields `RunSettings` lacks,
are listed as skipped with the reason; rows lmtune raises on are listed as errors with the message; rows the data
marks `suspect` are shown but left out of the statistics. Then: summaries per regime and per framework, the
breakdown of the five worst rows, and a check of the architectures the data says lmtune refuses.

    python benchmarks/external_accuracy.py [--data DIR] [--worst 5] [--out benchmarks/results/external_accuracy.txt]
"""
import argparse, datetime, json, os, platform, re, shlex, statistics, sys
from dataclasses import fields, replace

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
GiB = 2**30

from lmtune.catalog import GPU, gpu_spec, model_spec
from lmtune.estimate.memory import estimate_memory
from lmtune.estimate.time import estimate_time
from lmtune.plan.fit import max_seq_len
from lmtune.settings import FIELDS, run_settings

UNIT_BYTES = {'GB': 1e9, 'GiB': 2**30, 'MB': 1e6, 'MiB': 2**20}
MEMORY_ATTR = {'peak_allocated': 'peak_allocated', 'peak_reserved': 'peak_reserved', 'nvidia_smi': 'device_total',
               'gpu_memory': 'device_total'}   # the MemoryEstimate attribute that matches the row's `measured`
QUANTITY = {'peak_allocated': 'alloc', 'peak_reserved': 'reserved', 'nvidia_smi': 'nvidia-smi', 'gpu_memory': 'nvidia-smi',
            'max_context': 'max ctx', 'fits': 'fits', 'oom': 'fits', 'tokens_per_second': 'tok/s/GPU'}
BUDGET_BASE_GPU = 'A100-80GB'   # speed figures for a GPU given only as a memory budget (only its memory is used)
REGIMES = ('HF-stack memory', 'non-HF memory', 'max context', 'fits / OOM', 'fine-tuning throughput', 'fine-tuning GPU-hours',
           'pretraining GPU-hours', 'pretraining tokens/s/GPU', 'training-run fits')   # the order of the summaries
TIME_KEYS = ('matmul_s', 'attention_s', 'elementwise_s', 'kernel_latency_s', 'cpu_dispatch_s', 'optimizer_s', 'comm_s',
             'comm_exposed_s', 'tensor_parallel_comm_s', 'offload_s', 'step_s')


def read_jsonl(path): return [json.loads(l) for l in open(path) if l.strip()]

def framework_label(fw:str)->str:
    "A short name for the stack that measured a row."
    if 'answer.ai' in fw: return 'answerai (HF+PEFT, own loop)'
    if 'unsloth' in fw and fw.startswith('hf-'): return 'hf-trainer (unsloth baseline)'
    if 'lit' in fw and 'gpt' in fw: return 'litgpt'
    return fw.split(' ')[0]

def gpu_of(g):
    "A catalog name, a full GPU dict, or a memory budget {name, memory_bytes} (speed figures of BUDGET_BASE_GPU)."
    if isinstance(g, str): return gpu_spec(g)
    known = {f.name for f in fields(GPU)}
    if {'bf16_tflops', 'fp32_tflops', 'bandwidth_tbps', 'usd_per_hour'} <= set(g): return GPU(**{k: v for k, v in g.items() if k in known})
    return replace(gpu_spec(BUDGET_BASE_GPU), name=g['name'], memory_bytes=int(g['memory_bytes']))

def settings_of(row, lm):
    "The row's RunSettings, or the reason it cannot be built (fields RunSettings lacks)."
    unknown = [k for k in lm['settings'] if k not in FIELDS]
    if unknown: return None, f"RunSettings has no field(s) {unknown}"
    return run_settings(lm['settings']), None

def result(row, fw, regime, quantity, **kw):
    return dict(id=row['id'], fw=fw, regime=regime, quantity=quantity, measured='', predicted='', err=None, verdict=None,
                excluded=bool(row.get('suspect')), gaps=row.get('gaps') or [], detail=None, **kw)

def fmt_num(x, unit):
    if unit == 'tokens': return f"{x:,.0f} tok"
    if unit in UNIT_BYTES: return f"{x:.2f} {unit}"
    return f"{x:,.0f}"

# %% published-memory-time rows
def memory_time_regime(row)->str:
    return {'max_context': 'max context', 'fits': 'fits / OOM', 'oom': 'fits / OOM', 'tokens_per_second': 'fine-tuning throughput'
            }.get(row['measured'], 'HF-stack memory' if row['hf_stack'] else 'non-HF memory')

def memory_time_row(row):
    fw = framework_label(row['framework'])
    q, lm = row['measured'], row['lmtune']
    r = result(row, fw, memory_time_regime(row), QUANTITY.get(q, q))
    if lm is None: return {**r, 'skipped': row.get('unmodellable') or 'no lmtune description'}
    s, why = settings_of(row, lm)
    if s is None: return {**r, 'skipped': why}
    model, gpu = lm['model'], gpu_of(lm['gpu'])
    if q in MEMORY_ATTR:
        est = estimate_memory(model, s)
        k = UNIT_BYTES[row['unit']]
        pred = getattr(est, MEMORY_ATTR[q]) / k
        return {**r, 'measured': fmt_num(row['value'], row['unit']), 'predicted': fmt_num(pred, row['unit']),
                'err': pred / row['value'] - 1, 'detail': ('memory', est, None)}
    if q == 'max_context':
        pred = max_seq_len(model, gpu, s)
        at = estimate_memory(model, s.replace(seq_len=max(int(row['value']), 1)))   # what lmtune says at the measured length
        err = (pred / row['value'] - 1) if row['value'] else (0.0 if pred == 0 else None)
        return {**r, 'measured': fmt_num(row['value'], 'tokens'), 'predicted': fmt_num(pred, 'tokens'), 'err': err,
                'detail': ('memory', at, f"at the measured {row['value']:,} tokens: device_total {at.device_total/GiB:.2f} GiB "
                                          f"vs {gpu.memory_gib:.2f} GiB on {gpu.name}")}
    if q in ('fits', 'oom'):
        est = estimate_memory(model, s)
        meas_fit, pred = (q == 'fits' and bool(row['value'])), est.verdict(gpu)
        return {**r, 'measured': 'fits' if meas_fit else 'OOM', 'predicted': f"{pred} ({est.must_fit/GiB:.1f}/{gpu.memory_gib:.1f} GiB)",
                'verdict': (meas_fit, pred), 'detail': ('memory', est, None)}
    if q == 'tokens_per_second':
        est = estimate_time(model, s, gpu=gpu)
        pred, meas = est.tokens_per_second / est.num_gpus, row['value'] / s.world_size
        return {**r, 'measured': fmt_num(meas, ''), 'predicted': fmt_num(pred, ''), 'err': pred / meas - 1,
                'detail': ('time', est, None)}
    return {**r, 'skipped': f"measured={q!r}: no lmtune quantity for it"}

# %% published-training-runs rows
def training_run_rows(row):
    "Two results: the published speed (GPU-hours, or tokens/s per GPU for benchmark rows) and whether the run fits."
    fw = row['id'].split('-')[0] + ('*' if row.get('expressible') == 'proxy' else '')
    lm, stage = row['lmtune'], row.get('stage', 'pretrain')
    kind = row['kind']
    speed_regime = ('pretraining' if stage == 'pretrain' else 'fine-tuning') + (' GPU-hours' if kind == 'gpu_hours' else ' tokens/s/GPU')
    speed = result(row, fw, speed_regime, 'GPU-h' if kind == 'gpu_hours' else 'tok/s/GPU')
    fit = result(row, fw, 'training-run fits', 'fits')
    if not lm or row.get('expressible') == 'no':
        why = '; '.join(row.get('gaps') or []) or 'not expressible'
        return [{**speed, 'skipped': why}, {**fit, 'skipped': why}]
    s, why = settings_of(row, lm)
    if s is None: return [{**speed, 'skipped': why}, {**fit, 'skipped': why}]
    gpu = gpu_of(row['custom_gpu']) if row.get('custom_gpu') else gpu_spec(row['gpu'])
    if s.world_size != row['num_gpus']: speed['note'] = f"settings give {s.world_size} GPUs, the row {row['num_gpus']}"
    est = estimate_time(lm['model'], s, stage=stage, gpu=gpu, tokens=row['tokens'], **lm.get('kwargs', {}))
    mfu = f", MFU {est.mfu:.0%}" + (f" (published {row['published_mfu']:.0%})" if row.get('published_mfu') else '')
    if kind == 'gpu_hours':
        pred, meas = est.total_seconds / 3600 * est.num_gpus, row['published_gpu_hours']
        speed.update(measured=f"{meas:,.0f} GPU-h", predicted=f"{pred:,.0f} GPU-h", err=pred / meas - 1)
    else:
        pred, meas = est.tokens_per_second / est.num_gpus, row['published_tokens_per_sec_per_gpu']
        speed.update(measured=f"{meas:,.0f}", predicted=f"{pred:,.0f}", err=pred / meas - 1)
    speed['detail'] = ('time', est, f"{est.num_gpus} x {gpu.name}, {row['tokens']:.3g} tokens{mfu}")
    mem = estimate_memory(lm['model'], s, stage=stage)
    pred = mem.verdict(gpu)
    fit.update(measured='fits (it ran)', predicted=f"{pred} ({mem.must_fit/GiB:.1f}/{gpu.memory_gib:.1f} GiB)",
               verdict=(True, pred), detail=('memory', mem, None))
    return [speed, fit]

def guarded(fn, row, fw, regime, quantity):
    "Run one row; an exception from lmtune becomes an error result with its message."
    try: return fn(row)
    except Exception as e:
        r = {**result(row, fw, regime, quantity), 'error': f"{type(e).__name__}: {e}"}
        return [r] if fn is training_run_rows else r

# %% report
def summary_line(label, rs):
    num = [r for r in rs if r['err'] is not None]
    ver = [r for r in rs if r['verdict'] is not None]
    out = f"{label:52s} n={len(rs):<3d}"
    if num:
        a = [abs(r['err']) for r in num]
        w = max(num, key=lambda r: abs(r['err']))
        out += (f" median |error| {statistics.median(a):6.1%}  worst |error| {max(a):7.1%} ({w['id']})"
                f"  within 20%: {sum(x <= 0.2 for x in a)}/{len(a)}")
    if ver:
        agree = sum((m and p == 'fits') or (not m and p == 'does not fit') for m, p in (r['verdict'] for r in ver))
        borderline = sum(p == 'borderline' for _, p in (r['verdict'] for r in ver))
        false_no = sum(m and p == 'does not fit' for m, p in (r['verdict'] for r in ver))
        false_yes = sum(p == 'fits' and not m for m, p in (r['verdict'] for r in ver))
        out += f" agreement {agree}/{len(ver)}, borderline {borderline}, false 'does not fit' {false_no}, false 'fits' {false_yes}"
    return out

def breakdown_lines(r):
    kind, est, extra = r['detail']
    how = f"error {r['err']:+.1%}" if r['err'] is not None else ('agree' if r['verdict'][0] == r['verdict'][1] else 'differ')
    out = [f"  {r['id']} ({r['regime']}, {r['quantity']}): measured {r['measured']}, predicted {r['predicted']}, {how}"]
    if extra: out.append(f"    {extra}")
    if kind == 'memory':
        bd = ', '.join(f"{k} {v/GiB:.2f}" for k, v in est.breakdown.items() if v)
        out.append(f"    memory (GiB): {bd}; peak at {est.peak_at}; alloc {est.peak_allocated/GiB:.2f}, reserved "
                   f"{est.peak_reserved/GiB:.2f}, device total {est.device_total/GiB:.2f}")
    else:
        b = est.breakdown
        parts = ', '.join(f"{k[:-2]} {b[k]:.3g}" for k in TIME_KEYS if b.get(k))
        out.append(f"    step (s): {parts}; {'CPU' if b.get('cpu_bound') else 'GPU'}-bound, MFU {est.mfu:.0%}, "
                   f"{est.tokens_per_step:,} tokens/step on {est.num_gpus} GPU(s)")
    for n in est.notes: out.append(f"    note: {n[:160]}")
    for g in r['gaps']: out.append(f"    gap (data): {g}")
    return out

def refusal_checks(mem_rows, run_rows):
    "Ask lmtune about each architecture the data says it refuses, and the MLA models the deepseek row says crash."
    types = set()
    for row in mem_rows:
        m = re.search(r"architecture (\w+)", row.get('unmodellable') or '')
        if m: types.add(m.group(1))
    for row in run_rows:
        for g in row.get('gaps') or []: types.update(re.findall(r"model_type '(\w+)' refused", g))
    out = []
    for mt in sorted(types):
        try: model_spec({'model_type': mt}); msg = 'accepted'
        except Exception as e: msg = str(e).split('; lmtune cannot')[0]
        out.append(f"  model_spec({{'model_type': {mt!r}}}): {msg}")
    for name in ('deepseek-v2-lite', 'deepseek-v3'):   # multi-head latent attention (the deepseek-v2 row is a proxy for this)
        for label, fn in (('estimate_memory', lambda: estimate_memory(name, method='full', batch_size=1, seq_len=4096, stage='pretrain')),
                          ('estimate_time', lambda: estimate_time(name, method='full', batch_size=1, seq_len=4096, stage='pretrain', gpu='H100-SXM'))):
            try: fn(); msg = 'ok'
            except Exception as e: msg = f"raises {type(e).__name__}: {e}"
            out.append(f"  {label}({name!r}, full, 1 x 4096): {msg}")
    return out

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    default = os.environ.get('LMTUNE_EXTERNAL') or os.path.join(ROOT, '..', 'shared', 'external')
    ap.add_argument('--data', default=default, help='folder with published-memory-time.jsonl and published-training-runs.jsonl')
    ap.add_argument('--worst', type=int, default=5, help='rows whose breakdown is printed')
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'external_accuracy.txt'))
    a = ap.parse_args(argv)
    paths = [os.path.join(a.data, f) for f in ('published-memory-time.jsonl', 'published-training-runs.jsonl')]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing: raise SystemExit(f"data not found: {missing}; pass --data or set LMTUNE_EXTERNAL")
    mem_rows, run_rows = read_jsonl(paths[0]), read_jsonl(paths[1])

    results = [guarded(memory_time_row, r, framework_label(r['framework']), memory_time_regime(r), QUANTITY.get(r['measured'], r['measured']))
               for r in mem_rows]
    for r in run_rows: results += guarded(training_run_rows, r, r['id'].split('-')[0], f"{r.get('stage')} {r['kind']}", '')
    done = [r for r in results if not r.get('skipped') and not r.get('error')]
    stats = [r for r in done if not r['excluded']]

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%MZ')
    L = [f"$ python {shlex.join(['benchmarks/external_accuracy.py'] + argv)}   # {stamp}, {os.cpu_count()} CPU cores, {platform.machine()}, no GPU needed",
         f"data: {', '.join(os.path.relpath(p, ROOT) for p in paths)} ({len(mem_rows)} + {len(run_rows)} rows)",
         f"results: {len(results)} ({len(done)} predicted, {sum(bool(r.get('skipped')) for r in results)} skipped, "
         f"{sum(bool(r.get('error')) for r in results)} errors, {sum(r['excluded'] for r in done)} predicted but excluded as suspect)",
         "error = predicted / measured - 1; '*' after a training-run name: architecture proxied (expressible: proxy); "
         "'x' in the first column: suspect row, left out of the statistics", ""]
    head = f"  {'id':56s} {'framework':30s} {'regime':26s} {'qty':10s} {'measured':>16s} {'predicted':>26s} {'error':>8s}"
    L += [head, '-' * len(head)]
    rank = lambda g: (REGIMES.index(g) if g in REGIMES else len(REGIMES), g)
    order = lambda r: (rank(r['regime']), r['fw'], r['id'])
    for r in sorted(done, key=order):
        e = f"{r['err']:+8.1%}" if r['err'] is not None else ('   agree' if r['verdict'] and r['verdict'][0] == r['verdict'][1] else
                                                               ('  differ' if r['verdict'] else f"{'—':>8s}"))
        L.append(f"{'x' if r['excluded'] else ' '} {r['id']:56s} {r['fw']:30s} {r['regime']:26s} {r['quantity']:10s} "
                 f"{r['measured']:>16s} {r['predicted']:>26s} {e}" + (f"  ({r['note']})" if r.get('note') else ''))

    L += ['', 'Summary per regime (suspect rows left out):']
    regimes = sorted({r['regime'] for r in stats}, key=rank)
    for g in regimes: L.append('  ' + summary_line(g, [r for r in stats if r['regime'] == g]))
    L.append('  ' + summary_line('all memory rows (HF + non-HF)', [r for r in stats if r['regime'].endswith('memory')]))
    L += ['', 'Summary per regime and framework:']
    for g in regimes:
        for fw in sorted({r['fw'] for r in stats if r['regime'] == g}):
            L.append('  ' + summary_line(f"{g} / {fw}", [r for r in stats if r['regime'] == g and r['fw'] == fw]))

    L += ['', f"Skipped ({sum(bool(r.get('skipped')) for r in results)}): not expressible in lmtune"]
    L += [f"  {r['id']:56s} {r['fw']:30s} {r['quantity']:10s} {r['skipped']}" for r in results if r.get('skipped')]
    L += ['', f"Errors ({sum(bool(r.get('error')) for r in results)}): lmtune raised"]
    L += [f"  {r['id']:56s} {r['fw']:30s} {r['error']}" for r in results if r.get('error')]
    L += ['', 'Excluded from the statistics (the data marks them suspect):']
    L += [f"  {r['id']}: error {r['err']:+.1%}; {next(x for x in mem_rows + run_rows if x['id'] == r['id']).get('suspect')}"
          for r in done if r['excluded'] and r['err'] is not None]

    L += ['', f"The {a.worst} worst rows (largest |error|, suspect rows left out), with lmtune's breakdown and the data's gaps:"]
    for r in sorted([r for r in stats if r['err'] is not None], key=lambda r: -abs(r['err']))[:a.worst]: L += breakdown_lines(r)
    L += ['', "Runs that ran but lmtune says do not fit (false 'does not fit'):"]
    for r in stats:
        if r['verdict'] and r['verdict'][0] and r['verdict'][1] == 'does not fit': L += breakdown_lines(r)

    L += ['', 'Architectures the data says lmtune refuses (asked with only model_type), and the MLA models:']
    L += refusal_checks(mem_rows, run_rows)
    text = '\n'.join(L)
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, 'w').write(text + '\n')


if __name__ == '__main__': main()

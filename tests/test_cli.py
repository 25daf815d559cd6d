"The `lmtune` console script, run as a user runs it."
import subprocess, sys
from pathlib import Path

LMTUNE = Path(sys.executable).parent/'lmtune'

def run(*args):
    return subprocess.run([str(LMTUNE), *args], capture_output=True, text=True, timeout=120)

def test_help_lists_commands():
    r = run('--help')
    assert r.returncode == 0
    for cmd in ('demo', 'estimate', 'advise'): assert cmd in r.stdout

def test_estimate_prints_breakdown_fit_time_and_cost():
    r = run('estimate', 'llama-3.1-8b', '--method', 'qlora', '--gpu', 'RTX-4090', '--seq-len', '4096')
    assert r.returncode == 0, r.stderr
    out = r.stdout.lower()
    for word in ('weights', 'peak allocated', 'rtx-4090', 'fits', 'cost'): assert word in out, word

def test_estimate_bad_model_is_a_clear_error_without_traceback():
    r = run('estimate', 'llama-3.1-8bb')
    assert r.returncode == 2
    assert 'llama-3.1-8b' in r.stderr and 'Traceback' not in r.stderr

def test_advise_prints_a_recommendation():
    r = run('advise', '--goal', 'knowledge', '--domain-tokens', '3e9', '--labeled-examples', '2000',
            '--budget-usd', '20000', '--gpu', 'A100-80GB', '--num-gpus', '8', '--model', 'llama-3.1-8b',
            '--base-knows-domain', 'partial')
    assert r.returncode == 0, r.stderr
    best = [l for l in r.stdout.splitlines() if l.startswith('BEST:')]
    assert best and best[0].startswith('BEST: continued-pretraining'), r.stdout   # the recommendation, not the options table

def test_advise_bad_goal():
    r = run('advise', '--goal', 'knowlege')
    assert r.returncode == 2 and 'goal' in r.stderr and 'Traceback' not in r.stderr

ROOT = Path(__file__).resolve().parents[1]
README_FULL = ('estimate', 'llama-3.1-8b', '--method', 'full', '--batch-size', '2', '--seq-len', '2048',
               '--optim', 'paged_adamw_8bit', '--gradient-checkpointing', '--gpu', 'RTX-4090', '--tokens', '1e8')

def _readme_example():
    "The README's `lmtune estimate` line, and the model, `RunSettings` fields and GPU of the Python example above it."
    import ast, json, re
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    cells = [(c['cell_type'], ''.join(c['source'])) for c in nb['cells']]
    lines = [l for t, s in cells if t == 'markdown' for l in s.replace('\\\n', ' ').splitlines()]   # '\' goes on
    line = next(l.split('  #')[0].strip() for l in lines if l.startswith('lmtune estimate '))
    code = next(s for t, s in cells if t == 'code' and 'run = RunSettings(' in s)
    call = next(n for n in ast.walk(ast.parse(code))
                if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'RunSettings')
    fields = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    model, gpu = re.search(r"estimate_memory\('([^']+)'", code)[1], re.search(r"verdict\('([^']+)'\)", code)[1]
    return line, model, fields, gpu

def test_readme_cli_example_estimates_the_python_example_run():
    "The README's command line and the Python example above it describe one run, so they give one verdict."
    import shlex
    from lmtune.estimate.memory import estimate_memory
    from lmtune.settings import RunSettings
    from lmtune.ui.cli import _parser, settings_from_args
    line, model, fields, gpu = _readme_example()
    a = _parser().parse_args(shlex.split(line)[1:])
    assert (a.model, settings_from_args(a), a.gpu) == (model, RunSettings(**fields), [gpu]), line
    r = run(*shlex.split(line)[1:])
    assert r.returncode == 0, r.stderr
    verdict = estimate_memory(model, RunSettings(**fields)).verdict(gpu)
    rows = [l for l in r.stdout.splitlines() if l.startswith(gpu)]
    assert rows and rows[0].split('GiB')[1].strip().startswith(verdict), r.stdout

def test_estimate_prints_the_fixes_when_the_run_does_not_fit():
    from lmtune.plan.fit import fixes
    from lmtune.settings import RunSettings
    r = run(*README_FULL)
    assert r.returncode == 0, r.stderr
    full = RunSettings(method='full', batch_size=2, seq_len=2048, optim='paged_adamw_8bit', gradient_checkpointing=True)
    fx = fixes('llama-3.1-8b', full, 'RTX-4090', tokens=1e8)
    assert fx and all(f.fits for f in fx) and r.stdout.rstrip('\n').endswith(fx.text(3))

def test_estimate_infinite_tokens_is_a_clear_error():
    for bad in ('inf', 'nan'):
        r = run('estimate', 'llama-3.1-8b', '--tokens', bad)
        assert r.returncode == 2 and '--tokens' in r.stderr and 'finite' in r.stderr and 'Traceback' not in r.stderr

def test_estimate_empty_json_names_the_file(tmp_path):
    f = tmp_path/'config.json'; f.write_text('')
    for arg in (f, tmp_path):   # the file, and the folder that holds it
        r = run('estimate', str(arg))
        assert r.returncode == 2 and f"{f} is empty" in r.stderr and 'Traceback' not in r.stderr, r.stderr

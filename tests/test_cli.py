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
            '--budget-usd', '20000', '--gpu', 'A100-80GB', '--num-gpus', '8', '--model', 'llama-3.1-8b')
    assert r.returncode == 0, r.stderr
    assert 'continued-pretraining' in r.stdout.lower() or 'continued pretraining' in r.stdout.lower()

def test_advise_bad_goal():
    r = run('advise', '--goal', 'knowlege')
    assert r.returncode == 2 and 'goal' in r.stderr and 'Traceback' not in r.stderr

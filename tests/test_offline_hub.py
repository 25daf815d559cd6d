"A hub id that cannot be fetched (no network) is a clear ValueError that suggests a local path, not a transformers traceback."
import os, subprocess, sys

CODE = """
from lmtune.train import sft
try:
    sft('someorg/some-model', [{'prompt': 'a', 'response': 'b'}], max_steps=1, output_dir=%r)
except ValueError as e:
    print('VALUEERROR', e)
"""

def test_unreachable_hub_id_gives_clear_error(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE='1')  # what an unreachable hub looks like, without waiting for retries
    r = subprocess.run([sys.executable, '-c', CODE % str(tmp_path / 'run')], capture_output=True, text=True, timeout=180, env=env)
    assert 'VALUEERROR' in r.stdout, r.stdout + r.stderr[-2000:]
    assert "model='someorg/some-model'" in r.stdout and 'local' in r.stdout

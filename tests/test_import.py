"`import lmtune` and the estimator modules stay fast and free of torch/transformers."
import json, subprocess, sys
import pytest

HEAVY = ('torch', 'transformers', 'peft', 'trl', 'datasets', 'bitsandbytes', 'accelerate')

def _import_report(module: str) -> dict:
    code = (f"import sys, time; t=time.perf_counter(); import {module}; dt=time.perf_counter()-t; "
            f"import json; print(json.dumps(dict(seconds=dt, heavy=[m for m in {HEAVY!r} if m in sys.modules])))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])

def test_import_lmtune_is_fast_and_light():
    best = min((_import_report('lmtune') for _ in range(3)), key=lambda r: r['seconds'])
    assert best['heavy'] == [], f"import lmtune pulled in {best['heavy']}"
    assert best['seconds'] < 0.5, f"import lmtune took {best['seconds']:.3f}s"

@pytest.mark.parametrize('module', ['lmtune.settings', 'lmtune.corpus', 'lmtune.models', 'lmtune.catalog', 'lmtune.memory',
                                    'lmtune.cost', 'lmtune.calibrate', 'lmtune.data', 'lmtune.train', 'lmtune.adapters',
                                    'lmtune.advisor', 'lmtune.demo', 'lmtune.cli', 'lmtune.widgets', 'lmtune.monitor', 'lmtune.launch', 'lmtune.__main__'])
def test_modules_import_without_heavy_libraries(module):
    assert _import_report(module)['heavy'] == []

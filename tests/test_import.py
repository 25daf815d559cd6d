"`import lmtune` and the estimator modules stay fast and free of torch/transformers."
import json, pathlib, subprocess, sys
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
    assert best['seconds'] < 0.3, f"import lmtune took {best['seconds']:.3f}s"

LIB = pathlib.Path(__file__).resolve().parent.parent / 'lmtune'
MODULES = sorted('.'.join(('lmtune',) + p.relative_to(LIB).with_suffix('').parts).removesuffix('.__init__')
                 for p in LIB.rglob('*.py') if p.name != '_modidx.py')

def test_every_module_is_listed():
    assert {'lmtune.estimate.memory', 'lmtune.plan.fit', 'lmtune.train.stages', 'lmtune.ui.widgets', 'lmtune.train'} <= set(MODULES)

@pytest.mark.parametrize('module', MODULES)
def test_modules_import_without_heavy_libraries(module):
    assert _import_report(module)['heavy'] == []

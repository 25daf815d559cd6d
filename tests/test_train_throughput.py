"""benchmarks/train_throughput.py runs end to end on CPU (a smoke test of the script, not a speed measurement)."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_train_throughput_runs_on_cpu(tmp_path):
    out = tmp_path / "tp.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--tiny", "--steps", "2",
                        "--rows", "64", "--variants", "lmtune-lora,trainer-lora", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "FAILED" not in p.stdout, p.stdout
    lines = [l for l in p.stdout.splitlines() if l.startswith(("lmtune-lora", "trainer-lora"))]
    assert len(lines) == 2, p.stdout
    import json
    rows = json.loads(out.read_text())["results"]
    assert all(r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)

"Estimator stays light and fast: no torch import, well under a millisecond-scale budget per call."
import subprocess, sys, time

def test_memory_import_is_light():
    r = subprocess.run([sys.executable, "-c", "import sys, lmtune.memory, lmtune.catalog; print([m for m in ('torch','transformers','peft') if m in sys.modules])"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"

def test_estimate_memory_speed():
    from lmtune.memory import estimate_memory
    estimate_memory("llama-3.1-8b", method="lora", batch_size=4, seq_len=2048, gradient_checkpointing=True)
    t = time.perf_counter()
    for _ in range(200): estimate_memory("llama-3.1-8b", method="lora", batch_size=4, seq_len=2048, gradient_checkpointing=True)
    assert (time.perf_counter() - t)/200 < 5e-3

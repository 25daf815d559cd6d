"""The forgetting monitor's live view in a real browser: JupyterLab runs a notebook that trains in the background with
`monitor.start(...)`; the view updates while training runs, its Stop button stops training at a checkpoint, and the
saved notebook keeps the last state as HTML. Uses the shared JupyterLab + Playwright helpers of tests/browser.py."""
import json, sys, time
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import require_browser, jupyter_lab, chromium_page, write_notebook, open_notebook, run_all_cells, cell_errors, screenshot

pytestmark = pytest.mark.browser

SETUP = """\
from lmtune.models import tiny_model_dir
from lmtune.corpus import instruction_set, DOMAIN_TASKS
from lmtune.train.monitor import ForgettingMonitor, builtin_inputs
from lmtune.train import sft
model_dir = str(tiny_model_dir("llama", vocab_size=300, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, pretrain_steps=150))
monitor = ForgettingMonitor(**builtin_inputs(n_general=16, n_mc=12, n_task=10, tasks=DOMAIN_TASKS), eval_every=10, max_new_tokens=6, fewshot=2)"""
START = """\
handle = monitor.start(lambda: sft(model_dir, instruction_set(300, tasks=DOMAIN_TASKS), method="lora", learning_rate=5e-3,
                                   max_steps=100000, batch_size=16, seq_len=64, logging_steps=5, save_steps=10**6,
                                   output_dir={out!r}, progress_bar=False, callbacks=[monitor]))"""

def view_text(page)->str: return page.locator(".lmt-status").first.inner_text()

def test_live_view_updates_and_stop_button_stops_at_a_checkpoint(tmp_path):
    require_browser()
    out = tmp_path / "run"
    write_notebook(tmp_path / "monitor.ipynb", [SETUP, START.format(out=str(out))])
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "monitor.ipynb")
        run_all_cells(page, timeout=240) # start() returns at once: the cells finish while training runs
        assert not cell_errors(page), cell_errors(page)
        page.wait_for_function("() => [...document.querySelectorAll('.lmt-mon table th')].some(t => t.textContent.startsWith('latest (step'))",
                               timeout=180_000) # an evaluation after the base arrived through the display handle
        page.wait_for_function("() => { const s = document.querySelector('.lmt-status'); return s && s.textContent.includes('training'); }")
        page.locator(".lmt-mon img").first.wait_for()
        first = view_text(page)
        page.wait_for_function(f"() => document.querySelector('.lmt-status').textContent !== {json.dumps(first)}", timeout=120_000)
        screenshot(page, "monitor_live")

        page.get_by_role("button", name="Stop at next step").click()
        page.wait_for_function("() => document.querySelector('.lmt-status').textContent.includes('stopped by you at step')", timeout=120_000)
        page.get_by_role("button", name="Stopping at the next step…").wait_for()
        screenshot(page, "monitor_stopped")
        status = view_text(page)
        step = int(status.split("stopped by you at step ")[1].split()[0])

        state = json.loads((out / "monitor" / "state.json").read_text())
        assert state["rows"][-1]["step"] == step and 0 < step < 100000
        ck = out / f"checkpoint-{step}"
        assert ck.is_dir() and json.loads((ck / "trainer_state.json").read_text())["global_step"] == step, "stopped at a checkpoint"
        time.sleep(1.0)
        assert not (out / f"checkpoint-{step + 1}").exists()

        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        deadline = time.time() + 30
        while time.time() < deadline:
            nb = json.loads((tmp_path / "monitor.ipynb").read_text())
            html = [o["data"]["text/html"] for c in nb["cells"] for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
            html = ["".join(h) if isinstance(h, list) else h for h in html]
            if any("stopped by you at step" in h for h in html): break
            time.sleep(0.5)
        assert any("stopped by you at step" in h and "data:image/png;base64," in h for h in html), "the saved notebook keeps the last view as HTML"

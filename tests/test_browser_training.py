"""The Training tab of `lmtune.app()` in a real browser (JupyterLab + Debian's Chromium through Playwright): Start trains
a tiny model in the background and the status advances while the cell that made the tab has long finished; Stop ends a
second run at a checkpoint; `app.watch` follows training started from code the same way."""
import json, re, sys, time
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import (require_browser, jupyter_lab, chromium_page, write_notebook, open_notebook, run_all_cells, cell_errors,
                     screenshot, set_text, wait_until)

pytestmark = pytest.mark.browser
TINY = "tiny:llama?vocab_size=300&hidden_size=32&num_layers=2&num_heads=2&num_kv_heads=1&pretrain_steps=150"
APP = """\
import lmtune
ap = lmtune.app(train_model={tiny!r}, train_data="builtin:instruction?n=300", root={root!r})
ap.training.settings = ap.training.settings.replace(batch_size=8, seq_len=64, logging_steps=2, save_steps=10**6)
ap.training.monitor_inputs = dict(n_general=8, n_mc=6, n_task=4)
ap.training.steps_box.value = 30
ap"""
WATCH = """\
from lmtune.train.monitor import ForgettingMonitor, builtin_inputs
from lmtune.train.launch import resolve_model
from lmtune.corpus import instruction_set
from lmtune.train import sft
import lmtune
model_dir = resolve_model({tiny!r})
ap = lmtune.app()
mon = ForgettingMonitor(**builtin_inputs(n_general=8, n_mc=6, n_task=4), eval_every=20)
ap.watch(mon, lambda: sft(model_dir, instruction_set(300), monitor=mon, method="lora", max_steps=100000, batch_size=8,
                          seq_len=64, save_steps=10**6, logging_steps=2, output_dir={out!r}, progress_bar=False))
ap"""

def status(page)->str: return page.locator(".lmtune-train-status").first.inner_text()

def step_of(text:str)->int:
    m = re.search(r"step (\d+)/", text)
    return int(m.group(1)) if m else -1

def see_steps_advance(page, times:int=2, timeout:float=120):
    "Wait until the status shows `times` different step counts, each larger than the last."
    seen = [step_of(status(page))]
    for _ in range(times):
        wait_until(lambda: step_of(status(page)) > seen[-1] > -1 or (seen[-1] == -1 and step_of(status(page)) > -1), timeout,
                   f"the status to advance past {seen}")
        seen.append(step_of(status(page)))
    return seen

def stop_and_check(page, out_root:Path):
    "Press Stop; the status says where it stopped, and that step's checkpoint is on disk."
    page.locator(".lmtune-train-stop").first.click()
    text = wait_until(lambda: "stopped by you at step" in status(page) and status(page), 120, "the stop")
    step = int(text.split("stopped by you at step ")[1].split()[0])
    state = lambda: next(out_root.rglob(f"checkpoint-{step}/trainer_state.json"), None) # written just after the status
    ck = wait_until(state, 60, f"checkpoint-{step} on disk")
    assert json.loads(ck.read_text())["global_step"] == step, "stopped at a checkpoint"
    return step

def test_training_tab_starts_follows_and_stops_runs(tmp_path):
    require_browser()
    root = tmp_path / "runs"
    write_notebook(tmp_path / "app.ipynb", [APP.format(tiny=TINY, root=str(root))])
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "app.ipynb")
        run_all_cells(page)
        assert not cell_errors(page), cell_errors(page)
        page.get_by_role("tab", name="Training").click()
        page.locator(".lmtune-train-start").first.click()                 # the cell finished long ago: only the click runs
        seen = see_steps_advance(page, 2)
        assert seen[-1] > seen[0]
        wait_until(lambda: "finished at step 30" in status(page), 240, "the end of the first run")
        page.locator(".lmtune-runs").first.wait_for()
        screenshot(page, "training-tab-finished", ".lmtune-training")

        set_text(page, ".lmtune-train-steps", 100000)                     # a second run, stopped by the button
        page.locator(".lmtune-train-start").first.click()
        wait_until(lambda: "training" in status(page) and step_of(status(page)) > 0, 180, "the second run to train")
        step = stop_and_check(page, root)
        assert 0 < step < 100000
        history = lambda: page.locator(".lmtune-train-history").first.inner_text()
        wait_until(lambda: history().count("stopped by you") == 1 and history().count("finished at step 30") == 1, 60,
                   "both runs in the history")
        screenshot(page, "training-tab-stopped", ".lmtune-training")
        assert len([p for p in root.iterdir() if p.name.startswith("sft-")]) == 2, "each Start trains into a new folder"

def test_app_watch_follows_training_started_from_code(tmp_path):
    require_browser()
    out = tmp_path / "run"
    write_notebook(tmp_path / "watch.ipynb", [WATCH.format(tiny=TINY, out=str(out))])
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "watch.ipynb")
        run_all_cells(page)
        assert not cell_errors(page), cell_errors(page)
        seen = see_steps_advance(page, 2)
        assert seen[-1] > seen[0]
        page.locator(".lmtune-train-dashboard .lmt-mon img").first.wait_for(timeout=120_000)
        stop_and_check(page, out)
        screenshot(page, "app-watch-stopped", ".lmtune-training")

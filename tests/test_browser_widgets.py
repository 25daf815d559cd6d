"The estimator in a real browser: JupyterLab on 127.0.0.1, driven by Playwright in Debian's Chromium (marker `browser`)."
import pytest
import time
from browser import (chromium_page, cell_errors, jupyter_lab, open_notebook, require_browser, run_all_cells, screenshot,
                     set_text, wait_until, write_notebook)

pytestmark = pytest.mark.browser
GPU = "A100-80GB"
NOTEBOOK = [f"from lmtune.ui.app import app\napp('llama-3.1-8b', gpu={GPU!r}, batch_size=8, seq_len=2048)"]


def expected(model, **fields):
    "(peak GiB as displayed, verdict) that estimate_memory gives for this run."
    from lmtune.estimate.memory import estimate_memory
    from lmtune.settings import RunSettings
    from lmtune.ui.widgets import verdict
    m = estimate_memory(model, RunSettings(**fields))
    return f"{m.device_total / 2**30:.2f} GiB", verdict(m, GPU)


def test_estimator_follows_the_controls_and_a_fix_makes_it_fit(tmp_path):
    require_browser()
    write_notebook(tmp_path / "app.ipynb", NOTEBOOK)
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "app.ipynb")
        run_all_cells(page)
        est = page.locator(".lmtune-estimator")
        shown = lambda: (est.locator(".lmtune-peak").inner_text().strip(), est.locator(".lmtune-fit").inner_text().strip())
        def expect(model, **fields):
            want = expected(model, **fields)
            return wait_until(lambda: shown() == want, 60, f"{model} {fields}: {want}")

        expect("llama-3.1-8b", batch_size=8, seq_len=2048)
        assert shown()[1] == "does not fit"
        assert page.locator(".lmtune-static").first.is_hidden(), "the static copy is hidden while the widget is live"
        screenshot(page, "estimator-llama-8b-does-not-fit")

        set_text(page, ".lmtune-estimator .lmtune-model", "qwen2.5-0.5b")          # the model picker
        expect("qwen2.5-0.5b", batch_size=8, seq_len=2048)
        set_text(page, ".lmtune-estimator .lmtune-batch_size", 64)                  # the batch size
        expect("qwen2.5-0.5b", batch_size=64, seq_len=2048)
        assert shown()[1] == "does not fit"

        fix = est.locator(".lmtune-fix").first                                       # the ranked fixes arrive after a pause
        fix.wait_for(timeout=60_000)
        screenshot(page, "estimator-fixes", ".lmtune-estimator")
        label = fix.inner_text()
        fix.click()
        wait_until(lambda: shown()[1] == "fits", 60, f"'fits' after clicking {label!r}")
        screenshot(page, "estimator-after-fix", ".lmtune-estimator")

        set_text(page, ".lmtune-estimator .lmtune-seq_len", 0)                      # bad input: a message, not a traceback
        wait_until(lambda: "seq_len=0" in est.locator(".lmtune-error").inner_text(), 30, "the seq_len error message")
        screenshot(page, "estimator-bad-input", ".lmtune-estimator")
        set_text(page, ".lmtune-estimator .lmtune-seq_len", 1024)                   # and the widget keeps working
        wait_until(lambda: est.locator(".lmtune-error").inner_text().strip() == "", 30, "the message to clear")
        assert cell_errors(page) == [], cell_errors(page)


def test_advisor_tab_estimates_its_plan(tmp_path):
    require_browser()
    write_notebook(tmp_path / "app.ipynb", NOTEBOOK)
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "app.ipynb")
        run_all_cells(page)
        page.get_by_role("tab", name="Advisor").click()
        adv = page.locator(".lmtune-advisor")
        set_text(page, ".lmtune-advisor-labeled_examples", 5000)
        wait_until(lambda: "5,000" in adv.locator(".lmtune-advice-card").inner_text(), 60, "the card to quote 5,000 examples")
        assert adv.locator(".lmtune-best").inner_text().strip() == "fine-tuning"
        screenshot(page, "advisor-card", ".lmtune-advisor")
        adv.locator(".lmtune-estimate-plan").click()
        est = page.locator(".lmtune-estimator")
        wait_until(lambda: est.is_visible() and est.locator(".lmtune-fit").inner_text().strip() == "fits", 60, "the plan in the estimator")
        screenshot(page, "advisor-plan-in-estimator", ".lmtune-estimator")
        est.get_by_text("Setup as code").click()                                     # the copyable setup
        code = est.locator("textarea")
        wait_until(lambda: "from lmtune.train import sft" in code.input_value(), 90, "the lmtune.train call")
        est.locator(".widget-toggle-button", has_text="TRL / transformers + PEFT").click()
        wait_until(lambda: "SFTConfig(" in code.input_value() and "LoraConfig(" in code.input_value(), 90,
                   "the TRL + PEFT code (torch and PEFT load in the background the first time)")
        screenshot(page, "estimator-setup-code", ".lmtune-estimator")
        assert cell_errors(page) == [], cell_errors(page)


# an estimator whose hub lookups take 3 s (a stand-in for a slow hub: the kernel must stay live meanwhile)
SLOW_HUB = ["import time\nfrom lmtune.catalog import model_spec\nfrom lmtune.ui.widgets import EstimatorWidget\n"
            f"w = EstimatorWidget('llama-3.1-8b', gpu={GPU!r}, batch_size=8, seq_len=2048)\n"
            "w._lookup_fn = lambda text: (time.sleep(3), model_spec('qwen2.5-0.5b'))[1]\nw"]
LABELS = ".lmtune-estimator .widget-label, .lmtune-estimator .widget-label-basic, .lmtune-estimator .widget-label-basic span"
TRUNCATED = "els => els.filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"


def test_estimator_reads_as_a_form_for_people(tmp_path):
    require_browser()
    write_notebook(tmp_path / "est.ipynb", SLOW_HUB)
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "est.ipynb")
        run_all_cells(page)
        est = page.locator(".lmtune-estimator")
        est.locator(".lmtune-fit").wait_for(timeout=60_000)
        labels = est.locator(".widget-label")
        assert "Micro-batch size" in labels.all_inner_texts() and "batch_size" not in labels.all_inner_texts()
        assert page.eval_on_selector_all(LABELS, TRUNCATED) == [], "labels cut off with '…'"
        for title in ("Run", "Method", "GPUs", "Time and cost"): assert est.get_by_text(title, exact=True).count() == 1, title
        screenshot(page, "estimator-form", ".lmtune-estimator")

        hidden = lambda cls: est.locator(f".lmtune-{cls}").first.is_hidden()   # only what matters for the method shows
        assert not hidden("lora_r") and hidden("trainable_layers") and hidden("num_virtual_tokens") and hidden("double_quant")
        est.locator(".lmtune-method select").select_option("qlora")
        wait_until(lambda: not hidden("double_quant"), 30, "double quantization shown for QLoRA")
        est.locator(".lmtune-method select").select_option("full")
        wait_until(lambda: hidden("lora_r") and hidden("double_quant"), 30, "the LoRA controls hidden for a full fine-tune")
        assert hidden("offload_optimizer")
        est.locator(".lmtune-strategy select").select_option("zero3")
        wait_until(lambda: not hidden("offload_optimizer") and not hidden("offload_params"), 30, "offload shown under ZeRO-3")
        assert page.eval_on_selector_all(LABELS, TRUNCATED) == [], "labels cut off with '…'"   # the longest checkboxes

        optim = est.locator(".lmtune-optim select")                                  # a short list, then all of them
        short = optim.locator("option").count()
        assert short <= 8, short
        optim.select_option("more…")
        wait_until(lambda: optim.locator("option").count() > 30, 30, "every optimizer after 'more…'")

        t0 = time.time()                                                              # Setup as code opens at once
        est.get_by_text("Setup as code").click()
        wait_until(lambda: "from lmtune.train import sft" in est.locator("textarea").input_value(), 30, "the lmtune.train call")
        opened = time.time() - t0
        assert opened < 3, f"'Setup as code' took {opened:.1f} s to show (click, kernel, browser)"

        set_text(page, ".lmtune-estimator .lmtune-model", "someone/slow-model")      # a slow hub: busy at once, kernel free
        busy = est.locator(".lmtune-busy")
        wait_until(lambda: busy.is_visible() and "looking up" in busy.inner_text(), 2.5, "the busy sign")
        screenshot(page, "estimator-looking-up", ".lmtune-estimator")
        set_text(page, ".lmtune-estimator .lmtune-batch_size", 2)                    # the widget still answers meanwhile
        wait_until(lambda: est.locator(".lmtune-batch_size input").input_value() == "2", 10, "the batch size box")
        wait_until(lambda: "qwen2.5-0.5b" in est.locator(".lmtune-model-info").inner_text() and busy.is_hidden(), 30,
                   "the looked-up model drawn")
        assert cell_errors(page) == [], cell_errors(page)

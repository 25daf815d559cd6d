"The estimator in a real browser: JupyterLab on 127.0.0.1, driven by Playwright in Debian's Chromium (marker `browser`)."
import pytest
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
        wait_until(lambda: "SFTConfig(" in code.input_value() and "LoraConfig(" in code.input_value(), 30, "the TRL + PEFT code")
        screenshot(page, "estimator-setup-code", ".lmtune-estimator")
        assert cell_errors(page) == [], cell_errors(page)

"""`CompareWidget` in a real browser (JupyterLab + Debian's Chromium through Playwright): clicking Left / Right / Tie /
Skip and typing a shortcut in the key box advance the counter, and each rating is one more line in the ratings file, with
the side the browser showed the tuned answer on; a second notebook on the same file (a new kernel, as after a restart)
resumes at the first pair not rated."""
import json, re, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import (require_browser, jupyter_lab, chromium_page, write_notebook, open_notebook, run_all_cells, cell_errors,
                     screenshot, set_text, wait_until, wait_for_kernel)

pytestmark = pytest.mark.browser
N = 6
CELL = """\
from lmtune.ui.compare import CompareWidget
pairs = [dict(prompt=f"Question {{i}}?", base=f"base answer {{i}}", tuned=f"tuned answer {{i}}") for i in range({n})]
w = CompareWidget({path!r}, pairs, seed=1)
w"""

def shown(page, what:str)->str:
    "The text of a part of the widget on display (`status`, `prompt`, `left-answer`, `right-answer`, `error`)."
    return page.locator(f".lmtune-compare-{what}:visible").first.inner_text()

def rated(page)->int:
    m = re.search(r"rated (\d+) of", shown(page, "status"))
    return int(m.group(1)) if m else -1

def saved(path:Path)->list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []

def open_in_lab(page, path:str, timeout:float=120):
    "Open another notebook in the running JupyterLab (no reload, which would restore the first one) and wait for its kernel."
    page.evaluate(f"() => window.jupyterapp.commands.execute('docmanager:open', {{path: {path!r}}})")
    page.wait_for_function(f"() => {{ const w = window.jupyterapp.shell.currentWidget;"
                           f" return w && w.context && w.context.path === {path!r} && w.sessionContext; }}", timeout=timeout * 1000)
    wait_for_kernel(page, timeout)

def rate_and_check(page, path:Path, choice:str, act):
    "Do `act()` (a click or a key); the counter advances by one and the file gains the rating of the pair that was shown."
    before, left, right = rated(page), shown(page, "left-answer"), shown(page, "right-answer")
    act()
    wait_until(lambda: rated(page) == before + 1 and len(saved(path)) == before + 1, 30, f"rating {before + 1} ({choice})")
    r = saved(path)[-1]
    assert (r["choice"], r["left"], r["right"]) == (choice, left, right), (r, left, right)
    assert r["outcome"] == ("win" if choice == r["tuned_side"] else "loss" if choice in ("left", "right") else choice)
    assert r[r["tuned_side"]].startswith("tuned answer"), "the side recorded is the side the tuned answer was shown on"

def test_buttons_and_keys_rate_save_and_resume(tmp_path):
    require_browser()
    path = tmp_path / "ratings.jsonl"
    for name in ("compare.ipynb", "resume.ipynb"): write_notebook(tmp_path / name, [CELL.format(n=N, path=str(path))])
    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "compare.ipynb")
        run_all_cells(page)
        assert not cell_errors(page), cell_errors(page)
        page.locator(".lmtune-compare-left:visible").first.wait_for()
        assert rated(page) == 0 and not path.exists()
        for choice in ("left", "right", "tie", "skip"):                     # the cell finished long ago: only the clicks run
            rate_and_check(page, path, choice, lambda: page.locator(f".lmtune-compare-{choice}:visible").first.click())
        rate_and_check(page, path, "right", lambda: set_text(page, ".lmtune-compare-keys:visible", "2"))
        set_text(page, ".lmtune-compare-keys:visible", "x")
        wait_until(lambda: "type 1 (left)" in shown(page, "error"), 30, "the key box to refuse 'x'")
        assert rated(page) == 5 and len(saved(path)) == 5
        screenshot(page, "compare-widget", ".lmtune-compare:visible")

        open_in_lab(page, "resume.ipynb")                                   # a second notebook: a new kernel, the same file
        run_all_cells(page)
        assert not cell_errors(page), cell_errors(page)
        wait_until(lambda: rated(page) == 5, 60, "the second widget to count the saved ratings")
        rate_and_check(page, path, "tie", lambda: page.locator(".lmtune-compare-tie:visible").first.click())
        wait_until(lambda: f"All {N} pairs are rated" in shown(page, "prompt"), 30, "the end")
        wait_until(lambda: page.locator(".lmtune-compare-left:visible").first.is_disabled(), 30, "the buttons to be disabled")
        assert [r["index"] for r in saved(path)] == list(range(N)), "each pair rated once, in order"
        screenshot(page, "compare-widget-done", ".lmtune-compare:visible")

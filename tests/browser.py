"""Drive a notebook in a real browser: JupyterLab on 127.0.0.1 with a token, Debian's Chromium through Playwright.

Shared by the browser tests (`tests/test_browser_*.py`, pytest marker `browser`). A typical test:

    from browser import require_browser, jupyter_lab, chromium_page, write_notebook, open_notebook, run_all_cells, screenshot

    def test_something(tmp_path):
        require_browser()                       # skips without Chromium/Playwright; fails instead when LMTUNE_REQUIRE_BROWSER=1
        write_notebook(tmp_path / "t.ipynb", ["import lmtune", "lmtune.app()"])
        with jupyter_lab(tmp_path) as lab, chromium_page() as page:
            open_notebook(page, lab, "t.ipynb")
            run_all_cells(page)
            page.locator(".lmtune-fit").wait_for()
            screenshot(page, "something")

Browsers cannot be downloaded here (`playwright install` does not work): Playwright drives the system Chromium
(`apt-get install -y chromium`), found at `$LMTUNE_CHROMIUM` or /usr/bin/chromium.
"""
from __future__ import annotations
import contextlib, json, os, secrets, signal, socket, subprocess, sys, tempfile, time, urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("LMTUNE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRE_ENV = "LMTUNE_REQUIRE_BROWSER"  # set (to anything but 0) in CI: a browser test that cannot run fails instead of skipping
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots (ignored by git)


def missing_browser()->str|None:
    "Why the browser tests cannot run here (no Chromium, no Playwright), or None if they can."
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set LMTUNE_CHROMIUM)"
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return "playwright is not installed (pip install -e '.[dev]' installs it)"
    return None


def require_browser():
    "Skip the calling test when no browser can run, or fail it when `LMTUNE_REQUIRE_BROWSER` is set (CI)."
    import pytest
    why = missing_browser()
    if why is None: return
    if os.environ.get(REQUIRE_ENV, "0") not in ("", "0"): pytest.fail(f"browser test cannot run and {REQUIRE_ENV} is set: {why}")
    pytest.skip(f"browser test skipped: {why}")


def write_notebook(path, # where to write the .ipynb
                   cells:list[str], # code cells' sources, in order
                   )->Path:
    "A notebook of code cells, without outputs."
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(path); path.write_text(nbformat.writes(nb))
    return path


def _free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@dataclass
class Lab:
    "A running JupyterLab server."
    url: str        # http://127.0.0.1:PORT
    token: str
    root: Path      # the folder it serves
    process: subprocess.Popen
    log: Path       # its stdout and stderr

    def lab_url(self, path:str)->str: return f"{self.url}/lab/tree/{path}?token={self.token}"


def _kernel_env(state:Path)->dict:
    "This interpreter's environment for the server and its kernels, with Jupyter's state in `state` (nothing from $HOME)."
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               IPYTHONDIR=str(state / "ipython"), JUPYTER_PLATFORM_DIRS="1", OMP_NUM_THREADS="1", MPLBACKEND="agg",
               HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the kernel is this venv's python
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(__file__).parent.parent), env.get("PYTHONPATH", "")] if p)
    return env


@contextlib.contextmanager
def jupyter_lab(root, # folder to serve (the notebooks live here)
                timeout:float=90, # seconds to wait for the server
               ):
    "Start JupyterLab on 127.0.0.1 with a random token on a free port; yield a `Lab`; stop it (and its kernels) after."
    root, token, port = Path(root), secrets.token_hex(16), _free_port()
    state = Path(tempfile.mkdtemp(prefix="lmtune-lab-"))
    log = state / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.workspaces_dir={state / 'workspaces'}",
           f"--LabApp.user_settings_dir={state / 'settings'}", "--LabApp.news_url=", "--ServerApp.allow_remote_access=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0: cmd.append("--allow-root")  # CI containers run as root
    quiet = state / "settings" / "@jupyterlab" / "apputils-extension"   # no "get notified about Jupyter news?" popup
    quiet.mkdir(parents=True); (quiet / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_kernel_env(state), start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, proc, log)
    try:
        _wait_for_server(lab, timeout)
        yield lab
    finally:
        with contextlib.suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError): os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_server(lab:Lab, timeout:float):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if lab.process.poll() is not None: raise RuntimeError(f"JupyterLab exited ({lab.process.returncode}):\n{lab.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as r:
                if r.status == 200 and json.load(r): return
        time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{lab.log.read_text()[-3000:]}")


@contextlib.contextmanager
def chromium_page(width:int=1400, height:int=2400):
    "A Playwright page in headless Debian Chromium; console errors are collected in `page.console_errors`."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            yield page
        finally: browser.close()


def open_notebook(page, lab:Lab, path:str, timeout:float=90):
    "Open `path` (relative to the lab's root) and wait until its kernel is idle."
    page.goto(lab.lab_url(path), timeout=timeout * 1000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=timeout * 1000)
    wait_for_kernel(page, timeout)


def wait_for_kernel(page, timeout:float=120):
    "Wait until the current notebook's kernel is started and idle."
    page.wait_for_function("() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
                           " return s && s.session && s.session.kernel && s.session.kernel.status === 'idle'; }",
                           timeout=timeout * 1000)


def run_all_cells(page, timeout:float=180):
    "Run every cell of the current notebook (JupyterLab's own command) and wait until all have finished."
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        return nb.widgets.every(c => c.model.type !== 'code' || (c.model.executionCount !== null && !c.node.querySelector('.jp-InputPrompt').textContent.includes('*')));
    }""", timeout=timeout * 1000)
    wait_for_kernel(page, timeout)


def cell_errors(page)->list[str]:
    "The text of every error output in the current notebook (tracebacks)."
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def set_text(page, selector:str, value, timeout:float=30):
    "Type `value` into the text/number input inside `selector` and press Enter (what a user does)."
    box = page.locator(f"{selector} input").first
    box.wait_for(timeout=timeout * 1000)
    box.fill(str(value)); box.press("Enter")


def screenshot(page, name:str, selector:str|None=None)->Path:
    "Save a PNG of the page (or of the element matching `selector`) under tests/artifacts/."
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (page.locator(selector).first if selector else page).screenshot(path=str(path))
    return path


def wait_until(fn, # called until it returns something truthy (exceptions count as not yet)
               timeout:float=60, what:str="condition"):
    "Poll `fn()` every 0.2 s; return its first truthy value, or raise TimeoutError naming `what` and the last value."
    t0, last = time.time(), None
    while time.time() - t0 < timeout:
        try:
            last = fn()
            if last: return last
        except Exception as e: last = e
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s (last: {last!r})")

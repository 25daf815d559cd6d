"""Every code block of the README runs as written, in a fresh process, offline, on the built-in tiny models.

The Python blocks run in order in one interpreter (they build on each other); each `lmtune ...` line of the shell
blocks runs as a command. Not run here: `git clone`/`cd` (the checkout this test runs in) and `make ...` (CI runs
`make test`, which runs this file)."""
import os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LMTUNE = Path(sys.executable).parent / "lmtune"
SKIP = ("git clone", "cd ", "make ")

def blocks(lang:str)->list[str]:
    "The fenced blocks of `lang` in the README, in order."
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)

def env()->dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", MPLBACKEND="agg")

def commands()->list[str]:
    "The shell lines to run: each `lmtune ...` line, comments dropped."
    out = []
    for b in blocks("sh"):
        for line in b.splitlines():
            cmd = line.split("  #")[0].split(" #")[0].strip()
            if cmd and not cmd.startswith(SKIP):
                assert cmd.startswith("lmtune "), f"a README shell line this test does not know how to run: {line!r}"
                out.append(cmd)
    return out

def test_the_readme_has_python_and_shell_examples():
    assert len(blocks("python")) >= 3 and len(commands()) >= 3

def test_python_blocks_run_as_written(tmp_path):
    code = "\n".join(blocks("python")).replace("lmtune.app()", "lmtune.app().view") # no frontend: build the widget only
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README python blocks failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"

@pytest.mark.parametrize("cmd", commands())
def test_shell_lines_run_as_written(cmd, tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    args = cmd.split()
    r = subprocess.run([str(LMTUNE)] + args[1:], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{cmd}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    if args[1] == "train": # a quiet console: one line per log and per evaluation, none of the libraries' noise
        out = r.stdout + r.stderr
        for noise in ("{'loss'", "{'eval_", "Map:", "Setting accelerator", "gemm_4bit", "publisher trust", "mtime"):
            assert noise not in out, f"{cmd} printed {noise!r}:\n{out[-3000:]}"
# The CLI line's agreement with the Python example above it: tests/test_cli.py::test_readme_cli_example_estimates_the_python_example_run

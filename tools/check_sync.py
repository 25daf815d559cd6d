"""Fail when the notebooks and what is generated from them disagree, without touching the working tree.

1. a notebook carries outputs or stray metadata (`nbdev-clean` would change it);
2. the library differs from the notebooks (`nbdev-export` would change `lmtune/`), e.g. a hand-edited .py;
3. README.md differs from nbs/index.ipynb.
Each check runs `nbdev-clean` / `nbdev-export` on a scratch copy and compares."""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def _changed(a: Path, b: Path) -> list[str]:
    "Relative paths of files that differ between folders `a` and `b` (either side)."
    out, cmp = [], filecmp.dircmp(a, b, ignore=['__pycache__', '.ipynb_checkpoints'])
    def walk(d, rel):
        out.extend(str(Path(rel)/f) for f in d.left_only + d.right_only + d.diff_files)
        for name, sub in d.subdirs.items(): walk(sub, Path(rel)/name)
    walk(cmp, '.')
    return sorted(out)

def _scratch_copy(tmp: Path):
    for name in ('pyproject.toml', 'setup.py'): shutil.copy2(ROOT/name, tmp/name)
    for name in ('nbs', 'lmtune'): shutil.copytree(ROOT/name, tmp/name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints', '_tmp*'))

def main() -> int:
    problems = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d); _scratch_copy(tmp)
        subprocess.run([BIN/'nbdev-clean'], cwd=tmp, check=True, capture_output=True)
        if changed := _changed(ROOT/'nbs', tmp/'nbs'):
            problems.append("Notebooks carry outputs or metadata (run `nbdev-clean`): " + ', '.join(changed))
        subprocess.run([BIN/'nbdev-export'], cwd=tmp, check=True, capture_output=True)
        if changed := _changed(ROOT/'lmtune', tmp/'lmtune'):
            problems.append("lmtune/ differs from the notebooks (edit nbs/*.ipynb, then run `nbdev-export`): " + ', '.join(changed))
    if subprocess.run([sys.executable, ROOT/'tools'/'make_readme.py', '--check']).returncode:
        problems.append("README.md is out of date.")
    for p in problems: print("FAIL:", p)
    if not problems: print("notebooks clean, library in sync with notebooks, README up to date")
    return 1 if problems else 0

if __name__ == '__main__': sys.exit(main())

"""The shape of the code as a newcomer reads it: module sizes, export-cell lengths, hidden against visible tests,
long library lines, and the import graph's direction.

Usage:
    python benchmarks/code_shape.py [--out benchmarks/results/code_shape.txt]

- module size: lines of each `lmtune/**.py` (without `_modidx.py`);
- export cells: lines of every `#| export` cell in `nbs/` (the `#|` directive lines not counted);
- test cells: code cells that are not exported and not pure imports; hidden when they carry `#| hide`;
- long lines: library lines over 120 characters."""
import argparse, ast, datetime, json, os, platform, re, shlex, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def source(cell): return ''.join(cell['source'])

def is_export(cell): return cell['cell_type'] == 'code' and re.match(r'\s*#\|\s*export', source(cell)) is not None

def only_imports(text):
    try: body = ast.parse('\n'.join(l for l in text.splitlines() if not l.lstrip().startswith(('%', '!')))).body
    except SyntaxError: return False
    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)

def percentile(xs, q): xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))]

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT / 'benchmarks/results/code_shape.txt'))
    args = ap.parse_args()
    modules = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / 'lmtune').rglob('*.py') if p.name != '_modidx.py'}
    lines = [l for p in (ROOT / 'lmtune').rglob('*.py') if p.name != '_modidx.py' for l in p.read_text().splitlines()]
    export, hidden, visible = [], 0, 0
    for nb in sorted((ROOT / 'nbs').rglob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            text = source(c)
            if is_export(c): export.append(sum(1 for l in text.splitlines() if not l.startswith('#|')))
            elif not only_imports('\n'.join(l for l in text.splitlines() if not l.startswith('#|'))) and '#| default_exp' not in text:
                if re.search(r'^#\|\s*hide', text, re.M): hidden += 1
                else: visible += 1
    out = [f"$ python benchmarks/code_shape.py   # {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}, {platform.machine()}",
           f"modules: {len(modules)}; largest: " + ', '.join(f"{m} {n}" for m, n in sorted(modules.items(), key=lambda kv: -kv[1])[:5]),
           f"library lines: {len(lines)}; over 120 characters: {sum(len(l) > 120 for l in lines)} ({sum(len(l) > 120 for l in lines) / len(lines):.1%})",
           f"export cells: {len(export)}; lines median {statistics.median(export):.0f}, p90 {percentile(export, 0.9)}, max {max(export)}",
           f"test cells: {hidden + visible}; hidden {hidden}, visible {visible}",
           "", "modules by layer:"]
    for layer in ('', 'estimate/', 'plan/', 'train/', 'ui/'):
        mods = sorted((m, n) for m, n in modules.items() if m.startswith('lmtune/' + layer) and (layer or m.count('/') == 1))
        out.append(f"  {layer or 'ground/root'}: " + ', '.join(f"{Path(m).stem} {n}" for m, n in mods))
    text = '\n'.join(out) + '\n'
    print(text, end='')
    Path(args.out).write_text(text)

if __name__ == '__main__': main()

"""Write README.md from nbs/index.ipynb with nbconvert's Markdown exporter.

nbdev's own `nbdev-readme` renders through Quarto, which cannot be installed offline; this keeps the
same contract (README.md is generated from index.ipynb, never edited by hand) with nbconvert.
`python tools/make_readme.py --check` exits 1 when README.md differs from what would be generated."""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"

def render() -> str:
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        lines = c.source.splitlines()
        flags = {l.strip()[3:].strip() for l in lines if l.strip().startswith('#|')}
        if c.cell_type == 'code' and any(f.startswith(('hide', 'include: false')) for f in flags): continue
        c.source = '\n'.join(l for l in lines if not l.strip().startswith('#|')).strip()
        if c.cell_type == 'code': c.outputs = []
        if c.source: cells.append(c)
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python'}  # so code blocks are fenced as ```python
    body, _ = MarkdownExporter().from_notebook_node(nb)
    return HEADER + re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'

def main(argv=sys.argv[1:]):
    text, readme = render(), ROOT/'README.md'
    if '--check' in argv:
        if not readme.exists() or readme.read_text() != text:
            print("README.md differs from nbs/index.ipynb: run `make readme` (tools/make_readme.py) and commit it.")
            return 1
        return 0
    readme.write_text(text)
    print(f"wrote {readme}")
    return 0

if __name__ == '__main__': sys.exit(main())

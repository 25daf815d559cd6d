"""Build the documentation site from the notebooks: `make docs`. How and why: docs/README.md.

1. **execute** -- every notebook runs the way `nbdev-test` runs it (execnb, in its own folder, `IN_TEST=1`, cells
   flagged with a skipped test flag left out; progress bars off) and the copy with its outputs goes to `_build/exec/`. The notebooks in
   git carry no outputs; this step gives the pages their printed values, figures, tables and widget views. A copy is
   reused while its notebook and everything it may read (`inputs_digest`) are unchanged. Each copy also gets an
   "Open in Colab" badge under its title; text after the title and summary moves out of the title cell, which nbdev
   turns into frontmatter whole (`split_title_cell`); and a widget view whose cell also shows a static view
   (text/html or an image) gives way to it, since no page has a kernel behind it.
2. **process** -- nbdev's processing of the executed copies into `_proc/`: the step `nbdev_proc_nbs` runs for each
   notebook (a `show_doc` for every exported symbol, hidden cells removed, frontmatter), then `proc_nbs` itself for
   everything else in nbs/. The pages document the public API only: a `show_doc` of a `_private` name, or of a name
   outside its module's `__all__`, is dropped (`public_api_only`), and a backticked private name is not linked
   (`unlink_private`). A copy is processed again when its executed copy or this file changes.
3. **render** -- where Quarto is installed, `nbdev-docs` renders `_proc/` into `_docs/` (what the GitHub Pages
   workflow publishes). Always, Sphinx + MyST-NB (docs/conf.py) renders the same processed notebooks into `_build/html/`,
   with the sidebar read from nbs/_quarto.yml (`sidebar_sections`). Quarto-only markup is translated first
   (`sphinx_notebook`).

Run `python tools/build_docs.py --help` for the options."""
import argparse, hashlib, importlib, json, os, re, shutil, subprocess, sys, time, traceback
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from nbdev.process import Processor

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT/'docs'
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
STATIC_VIEWS = ('text/html', 'image/png', 'image/svg+xml', 'image/jpeg')
NOT_INPUTS = ('llms.txt', 'sidebar.yml', 'nbdev.yml')  # files in nbs/ that nbdev itself (re)writes
EXECUTE_VERSION = 4   # part of every executed copy's key: bump it when `build_notebook` changes what it writes
# Progress bars (tqdm's, the Hub's) are noise on a static page: off while the notebooks run for the docs.
QUIET = {'TQDM_DISABLE': '1', 'HF_HUB_DISABLE_PROGRESS_BARS': '1'}

@dataclass(frozen=True)
class Layout:
    "Where each step writes: by default `_proc/` (nbdev's place, which nbdev-docs renders) and `_build/`."
    executed:Path; processed:Path; sphinx_src:Path; doctrees:Path; site:Path

    @classmethod
    def under(cls, out=None):
        "nbdev's layout, or everything under one folder `out` (for checks that must not touch the user's site)."
        if out is None: return cls(ROOT/'_build/exec', ROOT/'_proc', ROOT/'_build/sphinx', ROOT/'_build/doctrees', ROOT/'_build/html')
        out = Path(out).resolve()   # MyST-NB writes output images next to the site, in jupyter_execute/
        return cls(out/'exec', out/'proc', out/'sphinx', out/'doctrees', out/'html')

    @property
    def is_nbdevs(self)->bool: return self.processed == ROOT/'_proc'

def config():
    "The nbdev configuration of this project (pyproject.toml [tool.nbdev])."
    from nbdev.config import get_config
    return get_config(ROOT)

def site_url(cfg)->str:
    "Where the published site lives, with a trailing slash (nbdev's own links point there)."
    return f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'

# ---------------------------------------------------------------------------------------------------- 1. execute

def notebooks(nbs:Path)->list[Path]:
    "The notebooks nbdev renders, relative to `nbs`."
    from nbdev.doclinks import nbglob
    return sorted(Path(p).relative_to(nbs) for p in nbglob(nbs, as_path=True))

def _mirrored(p:Path, nbs:Path)->bool:
    "Whether nbs/ file `p` is one nbdev's processing copies along: not a notebook, not hidden, not scratch."
    return p.is_file() and p.suffix != '.ipynb' and not any(
        s.startswith(('.', '_tmp')) or s == '__pycache__' for s in p.relative_to(nbs).parts)

def inputs_digest(nbs:Path)->str:
    "Hash of what an executed notebook may depend on besides itself: lmtune/, nbs/ files, committed results."
    files = [ROOT/'pyproject.toml'] + sorted((ROOT/'lmtune').rglob('*.py'))
    files += sorted(p for p in nbs.rglob('*') if _mirrored(p, nbs) and p.name not in NOT_INPUTS)
    for folder in ('benchmarks/results', 'examples'): files += sorted(p for p in (ROOT/folder).rglob('*') if p.is_file())
    h = hashlib.sha256(f'{EXECUTE_VERSION}'.encode())
    for f in files: h.update(str(f.relative_to(ROOT)).encode() + b'\0' + f.read_bytes())
    return h.hexdigest()

def colab_url(cfg, rel:Path)->str:
    "The notebook `nbs/rel` opened in Google Colab from the GitHub repository."
    return f"https://colab.research.google.com/github/{cfg.user}/{cfg.repo}/blob/{cfg.branch}/{cfg.nbs_path.name}/{rel.as_posix()}"

def _title_index(nb)->int:
    return next((i for i, c in enumerate(nb.cells) if c.cell_type == 'markdown' and re.match(r'\s*# ', c.source or '')), -1)

def split_title_cell(nb)->bool:
    """Keep only the title, the summary and `- key: value` lines in the title cell, and move what follows them into a
    markdown cell of its own; join a summary written over several `>` lines into one. nbdev turns the whole title
    cell into frontmatter, so it would drop the rest of the cell and all but the first summary line."""
    from fastcore.nbio import mk_cell
    if (i := _title_index(nb)) < 0: return False
    lines, head, summary = nb.cells[i].source.strip().split('\n'), [], []
    head.append(lines.pop(0))
    while lines and not lines[0].strip(): lines.pop(0)
    while lines and lines[0].startswith('>'): summary.append(lines.pop(0).lstrip('>').strip())
    while lines and not lines[0].strip(): lines.pop(0)
    keys = []
    while lines and re.match(r'-\s+[\w-]+:\s*\S', lines[0]): keys.append(lines.pop(0))
    if not lines and len(summary) < 2: return False
    nb.cells[i].source = '\n'.join(head + ([''] + ['> ' + ' '.join(summary)] if summary else []) + ([''] + keys if keys else []))
    if body := '\n'.join(lines).strip(): nb.cells.insert(i + 1, mk_cell(body, 'markdown'))
    return True

def add_colab_badge(nb, rel:Path, cfg):
    "Insert an 'Open in Colab' badge under the title cell, unless the notebook already links to Colab."
    from fastcore.nbio import mk_cell
    if any('colab.research.google.com' in (c.source or '') for c in nb.cells if c.cell_type == 'markdown'): return
    badge = f'<a class="colab-badge" href="{colab_url(cfg, rel)}" target="_blank">Open in Colab</a>'
    nb.cells.insert(_title_index(nb) + 1, mk_cell(badge, 'markdown'))

def keep_static_views(nb)->list[str]:
    """Drop the widget view from outputs whose cell also shows a static view (text/html or an image: in the same
    output, or as the next output, as `lmtune.ui.widgets` displays them); return the cells that show no static view."""
    missing = []
    for i, c in enumerate(nb.cells):
        static = any(m in o.get('data', {}) for o in c.get('outputs', []) for m in STATIC_VIEWS)
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if WIDGET_VIEW not in data: continue
            if static: del data[WIDGET_VIEW]
            else: missing.append(f"cell {i} ({((c.source or '').strip().splitlines() or [''])[-1][:60]!r})")
    return missing

def _run_notebook(src:Path, nb, skip_flags:list, cfg):
    "Run `nb` (read from `src`) the way `nbdev-test` does; return the error text or None."
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.test import nb_test_cells
    run = {c.idx_ for c in nb_test_cells(src, skip_flags)}
    shell = CaptureShell(src, profile=bool(cfg.exec_profile))
    env = {'IN_TEST': '1', **QUIET}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with working_directory(src.parent):
            shell.run_all(nb, exc_stop=True, preproc=lambda c: c.idx_ not in run, cell_timeout=cfg.cell_timeout or None)
        return None
    except BaseException: return shell.prettytb(fname=src) or traceback.format_exc()
    finally:
        for k, v in saved.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v

def is_public(name:str, public=None)->bool:
    """Whether `show_doc(name)` documents public API: no part of the dotted name is `_private` (dunders such as
    `__call__` are public) and, where the module's `__all__` is given as `public`, the name's first part is in it."""
    parts = name.split('.')
    if any(p.startswith('_') and not (p.startswith('__') and p.endswith('__')) for p in parts): return False
    return public is None or parts[0] in public

_SHOW_DOC = re.compile(r'^\s*show_doc\(\s*([\w.]+)', re.MULTILINE)

def module_public(nb)->set|None:
    "The `__all__` of the module notebook `nb` exports to (`#| default_exp`), or None for a notebook that exports nothing."
    from nbdev.processors import _default_exp
    if not (mod := _default_exp(nb)): return None
    return set(getattr(importlib.import_module(f"{config().lib_name}.{mod}"), '__all__', []))

class public_api_only(Processor):
    """An nbdev processor: drop the `show_doc` cells of names that are not public (`is_public`). A notebook may show a
    helper's documentation to its readers in Jupyter; the API pages list what users import."""
    def begin(self): self.public = module_public(self.nb)
    def __call__(self, cell):
        if cell.cell_type == 'code' and (m := _SHOW_DOC.search(cell.source or '')) and not is_public(m.group(1), self.public):
            del cell['source']

_SYMBOL_LINK = re.compile(r'\[`([\w.]+)`\]\(([^)\s]+)\)')

def unlink_private(cell):
    """An nbdev processor, after `add_links`: a backticked `_private` name stays code, not a link, since its page has no
    section for it (`public_api_only`)."""
    def sub(md): return _SYMBOL_LINK.sub(lambda m: m.group(0) if is_public(m.group(1)) else f"`{m.group(1)}`", md)
    if cell.cell_type == 'markdown' and cell.source: cell.source = sub(cell.source)
    for o in cell.get('outputs', []):
        if 'text/markdown' in o.get('data', {}):
            md = o['data']['text/markdown']
            o['data']['text/markdown'] = sub(''.join(md) if isinstance(md, list) else md)

def filters():
    "nbdev's processors, with `public_api_only` right after `add_show_docs` (before any show_doc runs) and `unlink_private` after `add_links`."
    from nbdev.processors import FilterDefaults, add_show_docs, add_links
    class PublicDocs(FilterDefaults):
        def base_procs(self):
            procs = list(super().base_procs())
            procs.insert(procs.index(add_show_docs) + 1, public_api_only)
            procs.insert(procs.index(add_links) + 1, unlink_private)
            return procs
    return PublicDocs

def process(src:Path, dst:Path):
    "nbdev's processing of one notebook (the step `nbdev_proc_nbs` runs for each file), with the public API only."
    import nbdev.serve_drv
    dst.parent.mkdir(parents=True, exist_ok=True)
    try: nbdev.serve_drv.main((src, dst, filters()))
    finally: os.environ.pop('IN_TEST', None)

def build_notebook(rel:Path, digest:str, layout:Layout, execute:bool=True)->dict:
    "Execute `nbs/rel` into the executed folder (or reuse the copy there) and process it; return what happened."
    from fastcore.nbio import read_nb, write_nb
    cfg = config()
    src, dst, out = cfg.nbs_path/rel, layout.executed/rel, layout.processed/rel
    key = hashlib.sha256(src.read_bytes() + digest.encode() + str(execute).encode()).hexdigest()
    res = dict(notebook=f"{cfg.nbs_path.name}/{rel.as_posix()}", status='reused', seconds=0.0, error=None, no_static_view=[])
    if not (dst.exists() and read_nb(dst).metadata.get('lmtune_docs', {}).get('key') == key):
        nb, t0 = read_nb(src), time.perf_counter()
        skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
        if execute: res['error'] = _run_notebook(src, nb, skip_flags, cfg)
        split_title_cell(nb)
        add_colab_badge(nb, rel, cfg)
        missing = keep_static_views(nb)
        for c in nb.cells: c.get('metadata', {}).pop('execution', None)   # execnb's timings are not nbformat
        res.update(status='executed' if execute else 'copied', seconds=round(time.perf_counter() - t0, 1))
        nb.metadata['lmtune_docs'] = dict(key=None if res['error'] else key, seconds=res['seconds'], no_static_view=missing)
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_nb(nb, dst); dst.touch()
    res['no_static_view'] = read_nb(dst).metadata['lmtune_docs'].get('no_static_view', [])
    if not out.exists() or out.stat().st_mtime < max(dst.stat().st_mtime, Path(__file__).stat().st_mtime):   # processing changed
        try: process(dst, out)
        except Exception as e: res['error'] = (res['error'] or '') + f"\nnbdev's processing failed:\n{e}"
    print(_status_line(res), flush=True)
    return res

def _status_line(r:dict)->str:
    note = f"; widget views without a static view: {', '.join(r['no_static_view'])}" if r['no_static_view'] else ''
    return f"{r['notebook']:45} {r['status']:8} {r['seconds']:6.1f} s{'  FAILED' if r['error'] else ''}{note}"

def sync_inputs(nbs:Path, rels:list[Path], layout:Layout):
    "Mirror nbs/'s other files (_quarto.yml, styles.css, images...) next to the executed copies; drop stale copies."
    from nbdev.quarto import refresh_quarto_yml
    refresh_quarto_yml()   # nbs/nbdev.yml from pyproject.toml, as nbdev-docs does
    keep = {r for r in rels}
    for p in sorted(nbs.rglob('*')):
        if not _mirrored(p, nbs): continue
        rel = p.relative_to(nbs); keep.add(rel)
        d = layout.executed/rel
        if not d.exists() or d.read_bytes() != p.read_bytes():
            d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d)
    for d in sorted(layout.executed.rglob('*')) if layout.executed.exists() else []:
        if d.is_file() and d.relative_to(layout.executed) not in keep and d.name != 'sidebar.yml': d.unlink()

def execute_and_process(rels:list[Path], layout:Layout, jobs:int, execute:list[str])->list[dict]:
    """Build every notebook, `jobs` at a time (longest first, by their last run); those matching a glob of `execute`
    run, the others are processed without outputs. In nbdev's layout, `proc_nbs` then copies the rest into _proc/."""
    from fastcore.parallel import parallel
    from fastcore.nbio import read_nb
    from nbdev.serve import proc_nbs
    cfg = config()
    digest = inputs_digest(cfg.nbs_path)
    def last_seconds(rel):
        try: return read_nb(layout.executed/rel).metadata.get('lmtune_docs', {}).get('seconds', 0)
        except Exception: return (cfg.nbs_path/rel).stat().st_size / 1e4
    runs = {r: any(fnmatch(r.as_posix(), p) for p in execute) for r in rels}
    order = sorted(rels, key=lambda r: (runs[r], last_seconds(r)), reverse=True)
    results = list(parallel(_build_one, [(r, runs[r]) for r in order], digest=digest, layout=layout, n_workers=jobs, pause=0.01))
    if layout.is_nbdevs:
        layout.processed.touch()   # our per-notebook processing is fresh: keep proc_nbs from discarding it
        proc_nbs(str(layout.executed), n_workers=0, file_glob='(notebooks are done above)')   # _quarto.yml, images...
    return sorted(results, key=lambda r: r['notebook'])

def _build_one(item, digest, layout): return build_notebook(item[0], digest, layout, execute=item[1])

# ---------------------------------------------------------------------------------------------------- 3. render

def render_quarto(layout:Layout)->bool:
    "Render `_proc/` with Quarto into `_docs/` through `nbdev-docs`, where Quarto is installed."
    if not shutil.which('quarto'):
        print("Quarto is not installed: skipping nbdev-docs (_docs/); the Sphinx site is built either way.")
        return False
    subprocess.run([Path(sys.executable).parent/'nbdev-docs', '--path', str(layout.executed)], cwd=ROOT, check=True)
    return True

def _frontmatter(nb)->dict:
    "The YAML frontmatter nbdev's processing puts in the first (raw) cell."
    import yaml
    c = nb['cells'][0] if nb['cells'] else {}
    src = ''.join(c.get('source', ''))
    m = re.match(r'\s*---\s*\n(.*?)\n---', src, re.S) if c.get('cell_type') == 'raw' else None
    return yaml.safe_load(m.group(1)) or {} if m else {}

def page_map(rels:list[Path])->dict:
    "Source notebook -> page path, as nbdev names pages (`estimate/01_memory.ipynb` -> `estimate/memory.html`)."
    from nbdev.config import nbpath2html
    return {r: nbpath2html(r) for r in rels}

def _glob(pattern:str, pages:dict)->list[Path]:
    "Notebooks matched by a sidebar entry: a file, a folder, or a glob (`*` crosses folders)."
    p = pattern.lstrip('/')
    if p in ('auto', '*'): p = '*'
    if not any(ch in p for ch in '*?['):
        return [r for r in pages if r.as_posix() == p or r.as_posix().startswith(p.rstrip('/') + '/')]
    return [r for r in pages if fnmatch(r.as_posix(), p) and r.as_posix() != 'index.ipynb']

def sidebar_sections(nbs:Path, pages:dict, meta:dict)->list[tuple]:
    """The sidebar of nbs/_quarto.yml as [(section title or None, [(text or None, notebook)])], globs expanded and
    sorted the way Quarto sorts them: `order` from the frontmatter first, then the file name."""
    import yaml
    side = (yaml.safe_load((nbs/'_quarto.yml').read_text()).get('website') or {}).get('sidebar') or {}
    if isinstance(side, list): side = side[0]
    def key(r): o = meta.get(r, {}).get('order'); return (o is None, o if o is not None else 0, r.name.upper())
    def entries(item)->list:
        if isinstance(item, list): return [e for i in item for e in entries(i)]
        if isinstance(item, str): return [(None, r) for r in sorted(_glob(item, pages), key=key)] or _missing(item)
        if 'section' in item: return entries(item.get('contents') or [])
        href = item.get('href') or item.get('file')
        return [(item.get('text'), r) for r in _glob(href, pages)][:1] or _missing(href) if href else []
    def _missing(what): print(f"sidebar entry {what!r} in nbs/_quarto.yml matches no notebook"); return []
    out, loose = [], []
    for item in side.get('contents') or []:
        if isinstance(item, dict) and 'section' in item: out.append((item['section'], entries(item)))
        else: loose += entries(item)
    return ([(None, loose)] if loose else []) + out

_LINK = re.compile(r'(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(\s+"[^"]*")?\s*\)(\{[^}\n]*\})?')
_QUARTO_OPTION = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def relink(md:str, src:Path, pages:dict, base:str)->str:
    """Rewrite links in markdown `md` of notebook `src` for a site of relative links: nbdev's absolute links to the
    published site and links to other notebooks become relative links to their pages; a link with pandoc attributes
    (`[source](url){target="_blank" style=...}`, which MyST does not read) becomes an HTML anchor."""
    here = pages[src].parent
    def target(url):
        path, hash_, frag = url.partition('#')
        if url.startswith(base): path = url[len(base):].partition('#')[0] or 'index.html'
        elif re.match(r'^[a-z][a-z0-9+.-]*:|^/|^#', url) or not path.endswith('.ipynb'): return url
        else:
            nb = Path(os.path.normpath(src.parent/path))
            if nb not in pages: return url
            path = pages[nb].as_posix()
        return os.path.relpath(path, here.as_posix() or '.') + (hash_ + frag if hash_ else '')
    def sub(m):
        bang, text, url, title, attrs = m.groups()
        url = target(url)
        if attrs and not bang:
            kv = ' '.join(a for a in re.findall(r'[\w-]+="[^"]*"|[\w-]+=\S+', attrs[1:-1]))
            return f'<a href="{url}" {kv}>{text}</a>'
        return f"{bang}[{text}]({url}{title or ''}){attrs or ''}"
    return _LINK.sub(sub, md)

def _quarto_options(source:str)->tuple[dict, str]:
    "Split the Quarto cell options (`#| echo: false` lines nbdev leaves at the top of a cell) from the code."
    opts, lines = {}, source.split('\n')
    while lines and (m := _QUARTO_OPTION.match(lines[0])):
        opts[m.group(1)] = m.group(2).strip('"\''); lines.pop(0)
    return opts, '\n'.join(lines)

def _md_cell(text:str, i:int)->dict: return dict(cell_type='markdown', id=f'docs-{i}', metadata={}, source=text)

def sphinx_notebook(nb:dict, src:Path, pages:dict, base:str)->dict:
    """Translate the Quarto markup nbdev's processing leaves in notebook `src` to what MyST-NB reads: the frontmatter
    cell becomes the title and summary, `#| echo: false` / `output: false` / `include: false` become MyST-NB's
    remove-input / remove-output / remove-cell tags, an `output: asis` cell (show_doc) becomes the markdown it
    printed, and links are rewritten by `relink`."""
    fm, cells = _frontmatter(nb), []
    if fm:
        nb['cells'] = nb['cells'][1:]
        cells.append(_md_cell(f"# {fm.get('title', src.stem)}\n" + (f"\n{{.description}}\n{fm['description']}\n" if fm.get('description') else ''), 0))
    for i, c in enumerate(nb['cells'], 1):
        src_text = ''.join(c.get('source', ''))
        if c['cell_type'] == 'markdown': c['source'] = relink(src_text, src, pages, base)
        elif c['cell_type'] == 'code':
            opts, code = _quarto_options(src_text)
            tags = set(c['metadata'].get('tags', []))
            if opts.get('include') == 'false': continue
            if opts.get('output') == 'asis':
                md = ''.join(''.join(o['data']['text/markdown']) for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {}))
                if opts.get('echo') != 'false': cells.append(dict(c, source=code, outputs=[]))
                md = re.sub(r'^\s*---\s*\n', '<hr class="show-doc">\n\n', md)   # docutils refuses a section that opens with a rule
                cells.append(_md_cell(relink(md, src, pages, base), i)); continue
            if opts.get('echo') == 'false': tags.add('remove-input')
            if opts.get('output') == 'false': tags.add('remove-output')
            if opts.get('code-fold') in ('true', 'True'): tags.add('hide-input')
            c['source'] = code
            if tags: c['metadata']['tags'] = sorted(tags)
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}):
                    o['data']['text/markdown'] = relink(''.join(o['data']['text/markdown']), src, pages, base)
        c.setdefault('id', f'docs-{i}')
        cells.append(c)
    nb['cells'] = cells
    nb['metadata'].pop('widgets', None)   # widget state would pull the widget manager JavaScript in: pages are static
    return nb

def _toctree(caption, items:list, pages:dict)->str:
    "A hidden MyST toctree (the Sphinx sidebar) for one sidebar section; the home page is the root, not an entry."
    lines = ['```{toctree}', ':hidden:'] + ([f':caption: {caption}'] if caption else []) + ['']
    lines += [f"{text} <{pages[r].with_suffix('').as_posix()}>" if text else pages[r].with_suffix('').as_posix()
              for text, r in items if r.as_posix() != 'index.ipynb']
    return '\n'.join(lines + ['```'])

def _write_if_changed(path:Path, data:bytes)->bool:
    if path.exists() and path.read_bytes() == data: return False
    path.parent.mkdir(parents=True, exist_ok=True); path.write_bytes(data); return True

def stage_for_sphinx(rels:list[Path], layout:Layout)->bool:
    "Write the Sphinx sources (translated processed notebooks, images); return whether the sidebar (index) changed."
    cfg = config()
    pages, base, written, stage = page_map(rels), site_url(cfg), set(), layout.sphinx_src
    nbs = {r: json.loads((layout.processed/r).read_text()) for r in rels if (layout.processed/r).exists()}
    meta = {r: _frontmatter(nb) for r, nb in nbs.items()}
    sections = sidebar_sections(cfg.nbs_path, {r: p for r, p in pages.items() if r in nbs}, meta)
    index_changed = False
    for r, nb in nbs.items():
        nb = sphinx_notebook(nb, r, pages, base)
        if r.as_posix() == 'index.ipynb':
            nb['cells'] += [_md_cell(_toctree(cap, items, pages), 10_000 + i) for i, (cap, items) in enumerate(sections)
                            if any(r.as_posix() != 'index.ipynb' for _, r in items)]
        dst = stage/pages[r].with_suffix('.ipynb')
        changed = _write_if_changed(dst, json.dumps(nb, indent=1, ensure_ascii=False).encode())
        index_changed |= changed and r.as_posix() == 'index.ipynb'
        written.add(dst)
    for f in layout.executed.rglob('*'):   # images and other files the pages refer to, as nbs/ has them
        rel = f.relative_to(layout.executed)
        if f.is_file() and f.suffix not in ('.ipynb', '.yml', '.yaml') and not rel.parts[0].startswith(('_', '.')):
            _write_if_changed(stage/rel, f.read_bytes()); written.add(stage/rel)
    for f in sorted(stage.rglob('*'), reverse=True):
        if f.is_file() and f not in written: f.unlink()
    return index_changed

def render_sphinx(layout:Layout, jobs:int, full:bool=False):
    "Sphinx + MyST-NB, configured in docs/conf.py: the staged sources -> the site."
    log = layout.doctrees.parent/'sphinx-warnings.txt'
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-j', str(jobs), '-c', str(CONF_DIR), '-d', str(layout.doctrees),
           '-w', str(log)] + (['-E', '-a'] if full else []) + [str(layout.sphinx_src), str(layout.site)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    if warnings := log.read_text().strip(): print(f"Sphinx warnings ({log}):\n{warnings}")

# ---------------------------------------------------------------------------------------------------- main

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--execute', nargs='*', default=['*'], metavar='GLOB',
                    help="run only the notebooks matching these globs (paths under nbs/); the others get pages without outputs")
    ap.add_argument('--no-execute', action='store_true', help="run no notebook (pages without outputs)")
    ap.add_argument('--jobs', type=int, default=min(os.cpu_count() or 1, 8), help="notebooks run side by side (default: one per core, at most 8)")
    ap.add_argument('--out', help="build everything under this folder instead of _build/ and _proc/ (no Quarto)")
    ap.add_argument('--no-quarto', action='store_true', help="skip nbdev-docs even where Quarto is installed")
    ap.add_argument('--clean', action='store_true', help="remove the build folders first")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault('OMP_NUM_THREADS', '1')   # one torch thread per notebook worker (see the Makefile)
    layout = Layout.under(args.out)
    if args.clean:
        for d in {layout.executed.parent, layout.processed, layout.site, layout.doctrees.parent}: shutil.rmtree(d, ignore_errors=True)
    cfg, times = config(), {}
    rels = notebooks(cfg.nbs_path)
    t0 = time.perf_counter(); sync_inputs(cfg.nbs_path, rels, layout)
    results = execute_and_process(rels, layout, args.jobs, [] if args.no_execute else args.execute)
    times['execute + process'] = time.perf_counter() - t0
    (layout.doctrees.parent/'notebooks.json').write_text(json.dumps(results, indent=1))   # for tests/test_docs.py
    failed = [r for r in results if r['error']]
    for r in failed: print(f"\n{r['notebook']} failed:\n{r['error']}", file=sys.stderr)
    if layout.is_nbdevs and not args.no_quarto:
        t0 = time.perf_counter()
        if render_quarto(layout): times['quarto (nbdev-docs)'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = stage_for_sphinx(rels, layout) or not (layout.site/'index.html').exists()
    render_sphinx(layout, 1, full=full); times['sphinx'] = time.perf_counter() - t0
    print('  '.join(f"{k}: {v:.0f} s" for k, v in times.items()) + f"  -> {layout.site/'index.html'}")
    if failed: print(f"\n{len(failed)} notebook(s) failed: {', '.join(r['notebook'] for r in failed)}", file=sys.stderr)
    return 1 if failed else 0

if __name__ == '__main__':   # run as the module `build_docs`, so the notebook workers can import `build_notebook`
    sys.path.insert(0, str(Path(__file__).parent))
    import build_docs
    sys.exit(build_docs.main())

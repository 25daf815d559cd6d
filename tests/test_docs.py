"""The docs site builds, and is whole: `tools/build_docs.py` (what `make docs` runs) into a scratch folder, then checks
on the HTML it made. The build runs nbdev's processing of every notebook and renders every page with Sphinx, but
executes only the notebooks in `EXECUTED` — the pages whose outputs these checks look at (the home page, the concept
pages that draw figures, the tutorials, the widget and dashboard pages). Every notebook already runs in `nbdev-test`;
running them all again here would double the time of `make test`. `make docs` executes them all. The build's output
and time go to tests/artifacts/docs_build.log; `LMTUNE_DOCS_OUT=DIR` checks an earlier `build_docs.py --out DIR`.

The browser checks need Chromium (`apt-get install chromium`; the width checks also Playwright) and skip, saying so,
where it is missing."""
import dataclasses, functools, importlib, inspect, json, os, pkgutil, re, subprocess, sys, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT/'tools'), str(ROOT/'docs')]
import build_docs   # noqa: E402
from heading_ids import pandoc_slug   # noqa: E402
from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REQUIRE_ENV, chromium_page, require_browser   # noqa: E402  (tests/browser.py: the shared Chromium setup)

EXECUTED = ['index.ipynb', 'concepts/approaches.ipynb', 'concepts/training_memory.ipynb',
            'tutorials/*', 'ui/01_widgets.ipynb', 'train/07_monitor.ipynb']
SCREENSHOTS = {'docs_home.png': 'index.html', 'docs_api_memory.png': 'estimate/memory.html'}
WIDTH_PAGES, VIEWPORT = ('tutorials', 'concepts'), (1300, 900)   # code blocks on these pages fit this window

@dataclasses.dataclass
class Site:
    html:Path; processed:Path; results:list; output:str; returncode:int; seconds:float

REUSE = 'LMTUNE_DOCS_OUT'   # a folder from an earlier `tools/build_docs.py --out DIR`: check it instead of building

@pytest.fixture(scope='module')
def site(tmp_path_factory)->Site:
    if reuse := os.environ.get(REUSE):
        out = Path(reuse).resolve(); layout = build_docs.Layout.under(out)
        return Site(layout.site, layout.processed, json.loads((out/'notebooks.json').read_text()), '', 0, float('nan'))
    out = tmp_path_factory.mktemp('docs')
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--out', str(out), '--jobs', '2', '--execute', *EXECUTED],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    seconds = time.perf_counter() - t0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS/'docs_build.log').write_text(f"$ tools/build_docs.py --out {out} --execute {' '.join(EXECUTED)}   # {seconds:.0f} s\n"
                                            + p.stdout + p.stderr)
    results = json.loads((out/'notebooks.json').read_text()) if (out/'notebooks.json').exists() else []
    layout = build_docs.Layout.under(out)
    return Site(layout.site, layout.processed, results, p.stdout + p.stderr, p.returncode, seconds)

def notebooks()->list[Path]: return build_docs.notebooks(ROOT/'nbs')

def page(rel:Path)->Path: return build_docs.page_map([rel])[rel]

@functools.lru_cache(maxsize=None)
def parsed(path:Path)->'Page': return Page(path)

class Page(HTMLParser):
    "Ids, links, images and scripts of one HTML page, the links of its sidebar and the names its show_doc sections document."
    def __init__(self, path:Path):
        super().__init__()
        self.ids, self.links, self.sidebar, self.classes, self._nav = set(), [], [], [], 0
        self.documented, self._show_doc, self._name = [], False, None
        self.feed(path.read_text(encoding='utf-8'))
    def handle_data(self, data):
        if self._name is not None: self._name.append(data)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        # a show_doc section: `<hr class="show-doc">` (tools/build_docs.py), then the heading with the name
        if tag == 'hr' and 'show-doc' in (a.get('class') or ''): self._show_doc = True
        elif self._show_doc and re.fullmatch(r'h[1-6]', tag): self._show_doc, self._name = False, []
        elif self._name is not None and tag == 'a':
            self.documented.append(''.join(self._name).strip()); self._name = None
        if 'id' in a: self.ids.add(a['id'])
        if a.get('class'): self.classes.append((tag, a['class'], a))
        if tag == 'nav' and 'bd-docs-nav' in (a.get('class') or ''): self._nav = 1
        elif tag == 'nav' and self._nav: self._nav += 1
        for key in ('href', 'src'):
            if a.get(key) and tag in ('a', 'img', 'script', 'link', 'source', 'iframe'):
                self.links.append((tag, key, a[key], a.get('rel')))
                if tag == 'a' and self._nav: self.sidebar.append(a[key])
    def handle_endtag(self, tag):
        if tag == 'nav' and self._nav: self._nav -= 1
        if self._name is not None and re.fullmatch(r'h[1-6]', tag):
            self.documented.append(''.join(self._name).strip()); self._name = None

def all_pages(site:Site)->dict:
    "Every page of the site (not the theme's template fragments under _static/), parsed."
    return {p: parsed(p) for p in sorted(site.html.rglob('*.html')) if '_static' not in p.relative_to(site.html).parts}

def test_build_succeeds(site):
    failed = [f"{r['notebook']}:\n{r['error']}" for r in site.results if r['error']]
    assert site.returncode == 0 and not failed, (f"tools/build_docs.py failed (exit {site.returncode}):\n" + '\n'.join(failed)
                                                 + f"\n--- output ---\n{site.output[-6000:]}")

def test_every_notebook_has_a_page(site):
    missing = [f"nbs/{r.as_posix()} -> {page(r)}" for r in notebooks() if not (site.html/page(r)).exists()]
    assert not missing, "notebooks without a page:\n" + '\n'.join(missing)

def test_sidebar_lists_every_page_once(site):
    home = parsed(site.html/'index.html')
    listed = [urlsplit(h).path for h in home.sidebar]
    expected = sorted(page(r).as_posix() for r in notebooks() if r.as_posix() != 'index.ipynb')   # the home page is the root
    missing = [p for p in expected if p not in listed]
    twice = sorted({p for p in listed if listed.count(p) > 1 and p != 'index.html'})
    assert not missing and not twice, f"pages missing from the sidebar (nbs/_quarto.yml): {missing}; listed twice: {twice}"

def _target(site:Site, here:Path, url:str):
    "The local file and fragment `url` on page `here` points to, or None for an external URL."
    base = build_docs.site_url(build_docs.config())
    if url.startswith(base): url = os.path.relpath(url[len(base):] or 'index.html', here.parent.relative_to(site.html).as_posix() or '.')
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(('mailto:', 'javascript:', 'data:')): return None
    path = (here.parent/unquote(parts.path)).resolve() if parts.path else here
    if path.is_dir(): path = path/'index.html'
    return path, unquote(parts.fragment)

def test_no_broken_internal_links_or_images(site):
    pages, broken = all_pages(site), []
    for here, pg in pages.items():
        for tag, key, url, _ in pg.links:
            t = _target(site, here, url)
            if t is None: continue
            path, frag = t
            if not path.exists(): broken.append(f"{here.relative_to(site.html)}: <{tag} {key}={url!r}> -> no such file")
            elif frag and path.suffix == '.html' and frag not in parsed(path).ids:
                broken.append(f"{here.relative_to(site.html)}: <{tag} {key}={url!r}> -> no id {frag!r} on that page")
    assert not broken, f"{len(broken)} broken internal links or images:\n" + '\n'.join(sorted(set(broken))[:80])

def test_pages_work_offline(site):
    "No page loads a script, stylesheet or image from the network: the site works from a folder."
    remote = [f"{p.relative_to(site.html)}: <{tag} {key}={url}>" for p, pg in all_pages(site).items()
              for tag, key, url, rel in pg.links if tag in ('img', 'script', 'link', 'iframe', 'source') and urlsplit(url).scheme in ('http', 'https')
              and (tag != 'link' or 'stylesheet' in (rel or '') or 'preload' in (rel or ''))]
    assert not remote, "pages that load from the network:\n" + '\n'.join(remote[:40])

def test_colab_badge_on_every_page(site):
    cfg, wrong = build_docs.config(), []
    for r in notebooks():
        p = site.html/page(r)
        if not p.exists(): continue
        badges = [a for tag, cls, a in parsed(p).classes if tag == 'a' and 'colab-badge' in cls]
        if [a.get('href') for a in badges] != [build_docs.colab_url(cfg, r)]: wrong.append(f"{page(r)}: {[a.get('href') for a in badges]}")
    assert not wrong, "pages without their one 'Open in Colab' badge:\n" + '\n'.join(wrong)

def _modules()->list:
    import lmtune
    return [importlib.import_module(f'lmtune.{m.name}') for m in pkgutil.iter_modules(lmtune.__path__) if not m.name.startswith('_')]

def _exported(mod)->list:
    "The functions and classes a module exports (its `__all__`) and defines itself."
    return [(n, o) for n in getattr(mod, '__all__', []) if (inspect.isfunction(o := getattr(mod, n, None)) or inspect.isclass(o))
            and getattr(o, '__module__', None) == mod.__name__]

def _module_pages()->dict:
    "Module name (`estimate.memory`) -> its notebook, from the notebooks' `#| default_exp`."
    pages = {}
    for r in notebooks():
        if m := re.search(r'#\|\s*default_exp\s+([\w.]+)', (ROOT/'nbs'/r).read_text()): pages[m.group(1)] = r
    return pages

def _own_doc(o)->str:
    doc = o.__doc__ or ''
    generated = inspect.isclass(o) and (dataclasses.is_dataclass(o) or issubclass(o, tuple)) and doc.startswith(f'{o.__name__}(')
    return '' if generated else doc.strip()

def test_every_exported_symbol_has_a_docstring():
    missing = [f"{mod.__name__}.{n}" for mod in _modules() for n, o in _exported(mod) if not _own_doc(o)]
    assert not missing, "exported functions and classes without a docstring:\n" + '\n'.join(missing)

def test_every_exported_symbol_is_shown_on_its_page(site):
    "nbdev's processing adds a `show_doc` (signature with docments, docstring) for every exported function and class."
    pages = _module_pages()   # module -> its notebook
    missing = []
    for mod in _modules():
        short = mod.__name__.removeprefix('lmtune.')
        if short not in pages or not (site.html/page(pages[short])).exists(): continue
        ids = parsed(site.html/page(pages[short])).ids
        missing += [f"{mod.__name__}.{n} (on {page(pages[short])})" for n, _ in _exported(mod) if pandoc_slug(n) not in ids]
    assert not missing, "exported symbols with no show_doc section on their page:\n" + '\n'.join(missing)

def test_is_public():
    "What counts as public API on a page: `tools/build_docs.py` drops the show_doc of anything else."
    assert build_docs.is_public('estimate_memory', {'estimate_memory'}) and build_docs.is_public('RunSettings.replace', {'RunSettings'})
    assert build_docs.is_public('Fix.__call__', {'Fix'}) and build_docs.is_public('advise', None)
    assert not build_docs.is_public('_attention_block_saved', None)         # a private helper
    assert not build_docs.is_public('DivergenceGuard._spike', {'DivergenceGuard'})   # a private method
    assert not build_docs.is_public('gpu_row_html', {'estimate_memory'})     # not in the module's __all__

def test_api_pages_document_only_public_names(site):
    """No page documents a `_private` name, and a module's page documents only names in the module's `__all__`: the API
    pages show what users import. (A helper that should not be public gets a leading `_` in its notebook.)"""
    modules = {r: f"{build_docs.config().lib_name}.{m}" for m, r in _module_pages().items()}
    wrong, shown = [], 0
    for r in notebooks():
        if not (site.html/page(r)).exists(): continue
        public = set(getattr(importlib.import_module(modules[r]), '__all__', [])) if r in modules else None
        names = parsed(site.html/page(r)).documented
        shown += len(names)
        wrong += [f"{page(r)}: {n}" for n in names if not build_docs.is_public(n, public)]
    assert shown > 100, f"only {shown} show_doc sections found: has their HTML (<hr class=\"show-doc\"> + heading) changed?"
    assert not wrong, "API pages that document names users do not import (private, or not in the module's __all__):\n" + '\n'.join(wrong)

def test_every_parameter_has_a_docment():
    "Every parameter of every exported function and dataclass has a docment; any without are listed in tests/artifacts/docs_missing_docments.txt."
    from fastcore.docments import docments
    lines = []
    for mod in _modules():
        for n, o in _exported(mod):
            if inspect.isclass(o) and '__init__' not in vars(o) and not dataclasses.is_dataclass(o): continue   # inherits its signature
            try: d = docments(o, full=True, args_kwargs=True)
            except Exception: continue
            if bare := [k for k, v in d.items() if k not in ('return', 'self', 'cls') and not v.get('docment')]:
                lines.append(f"{mod.__name__}.{n}: {', '.join(bare)}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS/'docs_missing_docments.txt').write_text('\n'.join(lines) + '\n')
    assert not lines, "parameters without a docment (a comment after the parameter):\n" + '\n'.join(lines)

# Sentences about how or where lmtune was built, not about what a user does with it: the build machine ("this shared
# 2-core machine"; "this machine" alone is the reader's), the working session, the issue tracker, folders beside the
# repository. The docs are for users. (The hardware a measurement ran on is context, and stays.)
BUILD_NOTES = [r'\bthis (shared |dev |CPU |\d+-core )+machine', r"\bthis machine's (CPU|GPU)", r'\bother engineers\b',
               r'\bin this session\b', r'\bno GPU was available\b', r'\bdev VM\b', r'\bthe issue\b', r'\bissue #?\d+',
               r'\bH200 runs we\b', r'\bwe (ran|built|measured)\b', r'\bbuilt on (this|a|our) (shared |dev )?(machine|VM|laptop|\d+-core)',
               r'(?<![\w/.-])(\.\./)?shared/', r'\bbeside the repository\b', r'(?<![\w.])/work/', r'\bowed check\b', r'\bstill owe[sd]?\b']
# Notebooks others are editing, whose prose still has such sentences (strict: the mark must go once they are fixed).
PENDING_PROSE = []

def build_notes(text:str)->list[str]:
    "The sentences of `text` (markdown) that match a pattern of `BUILD_NOTES`."
    hits = []
    for sentence in re.split(r'(?<=[.!?:;])\s+|\n\s*\n', text):
        if any(re.search(p, sentence, re.IGNORECASE) for p in BUILD_NOTES): hits.append(' '.join(sentence.split()))
    return hits

def test_build_notes_finds_what_it_should():
    assert build_notes("Measured on this shared 2-core machine.\n\nThe estimator is fast.") == ["Measured on this shared 2-core machine."]
    assert build_notes("No GPU was available in this session; `calibrate` runs them.")
    assert build_notes("runs on an H200 (`../shared/calibration`: Qwen2.5)") and build_notes("The issue that started lmtune")
    assert not build_notes("The CPU issues kernels one by one. The model is built on the meta device. Run it on this machine.")
    assert not build_notes("Measured on a 2-core x86_64 CPU: 22 ms median.")   # the hardware of a measurement is context

def _prose_sources()->list:
    "Every notebook's markdown, and the README."
    return [r.as_posix() for r in notebooks()] + ['README.md']

def _pending(name): return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"pending edits in {name}")) if name in PENDING_PROSE else name

@pytest.mark.parametrize('name', [_pending(n) for n in _prose_sources()])
def test_no_sentences_about_how_the_project_was_built(name):
    "The docs' prose speaks to users: nothing about the machine, session or issue lmtune was built in (`BUILD_NOTES`)."
    if name == 'README.md': cells = [(0, (ROOT/name).read_text())]
    else: cells = [(i, ''.join(c['source'])) for i, c in enumerate(json.loads((ROOT/'nbs'/name).read_text())['cells'])
                   if c['cell_type'] == 'markdown']
    hits = [f"cell {i}: {h}" for i, text in cells for h in build_notes(text)]
    assert not hits, f"{name}: sentences about how or where the project was built:\n" + '\n'.join(hits)

def test_widgets_show_static_views(site):
    "Widgets and the dashboard appear as their static view (text/html or an image), never as an empty widget placeholder."
    without = [f"{r['notebook']}: {v}" for r in site.results for v in r['no_static_view']]
    assert not without, "cells showing a widget without a static view (give the widget a text/html representation):\n" + '\n'.join(without)
    leaks = [str(p.relative_to(site.html)) for p in all_pages(site)
             if re.search(r'<script type="application/vnd\.jupyter\.widget-(view|state)\+json"', p.read_text(encoding='utf-8'))]
    assert not leaks, f"pages that embed widget views (which need the widget JavaScript and a kernel): {leaks}"

def test_executed_pages_show_their_outputs(site):
    "The outputs come from running the notebooks: printed values, HTML representations and matplotlib figures."
    import lmtune
    assert f'lmtune {lmtune.__version__} on Python' in (site.html/'tutorials'/'getting_started.html').read_text(encoding='utf-8')
    mem = parsed(site.html/'concepts'/'training_memory.html')
    figures = [url for tag, key, url, _ in mem.links if tag == 'img' and url.endswith('.png')]
    assert len(figures) >= 2, figures                                       # its two charts, drawn by the build
    assert 'peak allocated' in (site.html/'tutorials'/'qlora_24gb.html').read_text(encoding='utf-8')   # MemoryEstimate's HTML

def test_quarto_sidebar_entries_match_notebooks():
    "Every entry of the sidebar in nbs/_quarto.yml names at least one notebook, and every notebook is in one section."
    import yaml
    rels = notebooks()
    side = yaml.safe_load((ROOT/'nbs'/'_quarto.yml').read_text())['website']['sidebar']
    assert 'sidebar.yml' not in (yaml.safe_load((ROOT/'nbs'/'_quarto.yml').read_text()).get('metadata-files') or []), \
        "nbs/_quarto.yml must not read nbdev's generated sidebar.yml: its own sidebar is the one description"
    sections = build_docs.sidebar_sections(ROOT/'nbs', build_docs.page_map(rels), {})
    listed = [r for _, items in sections for _, r in items]
    assert sorted(listed) == sorted(rels), f"in no section: {sorted(set(rels) - set(listed))}; twice: {sorted({r for r in listed if listed.count(r) > 1})}"
    assert side.get('contents')

def test_pages_workflow_builds_with_make_docs():
    "The GitHub Pages workflow (fastai/workflows quarto-ghp's steps) builds with `make docs` and publishes _docs/."
    import yaml
    wf = yaml.safe_load((ROOT/'.github'/'workflows'/'deploy.yaml').read_text())
    steps = [s for job in wf['jobs'].values() for s in job['steps']]
    assert any('make docs' in (s.get('run') or '') for s in steps)
    assert any((s.get('with') or {}).get('publish_dir') == './_docs' for s in steps)

@pytest.mark.browser
@pytest.mark.parametrize('png, html', SCREENSHOTS.items())
def test_headless_chromium_screenshots(site, png, html):
    "A headless Chromium (its own --screenshot; no Playwright needed) opens the home page and an API page; the screenshots go to tests/artifacts/."
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        why = f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set LMTUNE_CHROMIUM): no screenshots of the docs site"
        if os.environ.get(REQUIRE_ENV, '0') not in ('', '0'): pytest.fail(f"{REQUIRE_ENV} is set: {why}")
        pytest.skip(why)
    from PIL import Image
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS/png
    out.unlink(missing_ok=True)
    flags = CHROMIUM_ARGS + ['--hide-scrollbars', '--window-size=1280,1600', f'--screenshot={out}']
    subprocess.run([CHROMIUM, *flags, (site.html/html).as_uri()], capture_output=True, timeout=120)
    assert out.exists(), f"Chromium wrote no screenshot of {html}"
    img = Image.open(out).convert('RGB')
    assert img.size == (1280, 1600)
    assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50, f"{png} is (nearly) blank"

# Every code block of the page (collapsed ones opened): its widths, its longest line, and whether it is printed output.
_CODE_BLOCKS = """() => { document.querySelectorAll('details').forEach(d => d.open = true);
  return [...document.querySelectorAll('.bd-article pre')].map(p => ({scroll: p.scrollWidth, client: p.clientWidth,
    output: !!p.closest('.cell_output'), longest: Math.max(0, ...p.textContent.split('\\n').map(l => l.length)),
    line: p.textContent.split('\\n').reduce((a, l) => l.length > a.length ? l : a, '').slice(0, 100)})); }"""
_LAYOUT = """() => ({article: document.querySelector('.bd-article').getBoundingClientRect().width,
  font: getComputedStyle(document.querySelector('.bd-article pre')).fontSize})"""

@pytest.mark.browser
def test_code_blocks_fit_at_1300px(site):
    """At a 1300 x 900 window no code block of a tutorial or concept page scrolls sideways (Playwright + Chromium:
    `scrollWidth <= clientWidth` for every `pre`, collapsed cells opened). Code lines are at most 120 characters (the
    project's rule); printed output wraps. The measurement goes to tests/artifacts/docs_width.txt."""
    require_browser()
    pages = sorted(p for folder in WIDTH_PAGES for p in (site.html/folder).glob('*.html'))
    lines, scrolling = [f"# {VIEWPORT[0]} x {VIEWPORT[1]} px window, headless Chromium ({CHROMIUM}) through Playwright"], []
    with chromium_page(*VIEWPORT) as pg:
        for p in pages:
            pg.goto(p.as_uri())
            blocks, layout = pg.evaluate(_CODE_BLOCKS), pg.evaluate(_LAYOUT)
            code = [b for b in blocks if not b['output']]
            wide = [b for b in blocks if b['scroll'] > b['client']]
            lines.append(f"{p.relative_to(site.html).as_posix():36} {len(blocks):3} code blocks ({len(code)} code, "
                         f"{len(blocks) - len(code)} output), {len(wide)} scroll sideways; longest code line "
                         f"{max((b['longest'] for b in code), default=0):3} characters; article {layout['article']:.0f} px, "
                         f"code {layout['font']}, block {min((b['client'] for b in blocks), default=0)} px wide")
            scrolling += [f"{p.relative_to(site.html)}: {b['scroll']} > {b['client']} px: {b['line']!r}" for b in wide]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS/'docs_width.txt').write_text('\n'.join(lines + scrolling) + '\n')
    assert len(pages) >= 9, f"tutorial and concept pages found: {pages}"
    assert not scrolling, f"code blocks that scroll sideways at {VIEWPORT[0]} px:\n" + '\n'.join(scrolling)

@pytest.mark.browser
def test_page_contents_open_from_the_header_at_1300px(site):
    "At 1300 px the page's table of contents leaves the article its width and opens from the article header's button."
    require_browser()
    with chromium_page(*VIEWPORT) as pg:
        pg.goto((site.html/'tutorials'/'qlora_24gb.html').as_uri())
        assert pg.evaluate(_LAYOUT)['article'] >= 1000
        pg.locator('.bd-header-article button.secondary-toggle').click()
        toc = pg.locator('dialog#pst-secondary-sidebar-modal[open] nav.page-toc a')
        toc.first.wait_for(state='visible', timeout=5000)
        assert 'How far can it go?' in toc.all_inner_texts()

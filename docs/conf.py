# Sphinx + MyST-NB configuration of the static docs site (_build/html/). tools/build_docs.py writes the sources
# (nbdev's processed notebooks, already executed) into _build/sphinx/ and runs Sphinx with this folder as its
# configuration directory. Why Sphinx + MyST-NB: docs/README.md.
import sys
from pathlib import Path
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parent.parent
cfg = get_config(ROOT)   # one description of the project: pyproject.toml [tool.nbdev]

project = cfg.lib_name
html_title = cfg.title
html_baseurl = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'
extensions = ['myst_nb']
source_suffix = {'.ipynb': 'myst-nb'}
exclude_patterns = ['**/.ipynb_checkpoints']

# Outputs come from tools/build_docs.py, which runs every notebook the way nbdev-test does; Sphinx never executes.
nb_execution_mode = 'off'
nb_merge_streams = True
nb_render_markdown_format = 'myst'   # markdown outputs (tables, show_doc) read like markdown cells
# Pages are static: a widget shows its static view (text/html or an image), never the widget manager, and no
# widget JavaScript is loaded from a CDN.
nb_mime_priority_overrides = [('html', 'application/vnd.jupyter.widget-view+json', None)]
nb_ipywidgets_js = {}

myst_enable_extensions = ['attrs_inline', 'attrs_block', 'colon_fence', 'html_image']
myst_all_links_external = True   # tools/build_docs.py already made every link the page URL it must be
myst_heading_anchors = 4
suppress_warnings = ['myst.header']   # notebooks may step from `#` to `###` (show_doc headings are level 3)

sys.path.insert(0, str(Path(__file__).parent))
myst_heading_slug_func = 'heading_ids.pandoc_slug'   # the ids Quarto gives headings, so nbdev's symbol links resolve

html_theme = 'sphinx_book_theme'
html_theme_options = dict(repository_url=cfg.git_url, repository_branch=cfg.branch, use_repository_button=True,
                          use_download_button=False, home_page_in_toc=True, show_toc_level=2)
html_static_path = [str(ROOT/cfg.nbs_path.name/'styles.css'),   # the same stylesheet Quarto uses
                    str(Path(__file__).parent/'contents_button.js')]
html_css_files = ['styles.css']
html_js_files = ['contents_button.js']
html_show_sourcelink = False
html_copy_source = False

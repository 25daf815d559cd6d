"""lmtune's layers point one way: ui -> train -> plan -> estimate -> ground.

Every `import` and `from ... import` in the library is read, function-local ones included. An import may point to its
own layer or a lower one, never up, and the modules must form no circle. The package root (`lmtune/__init__.py`,
`lmtune/__main__.py`), the old paths' stand-ins (`lmtune._moved`) and the subpackages' `__init__.py` stand outside the layers: they only re-export."""
import ast, pathlib
import pytest

LIB = pathlib.Path(__file__).resolve().parent.parent / 'lmtune'
LAYERS = {'ground': 0, 'estimate': 1, 'plan': 2, 'train': 3, 'ui': 4}
GROUND = {'settings', 'catalog', 'data', 'corpus', 'models', 'report', 'specs', 'files'}

def module_name(path: pathlib.Path) -> str:
    return '.'.join(('lmtune',) + path.relative_to(LIB).with_suffix('').parts)

def layer(module: str) -> int|None:
    "The layer of a dotted module name, or None for the package root, `__main__`, `_modidx` and the subpackages' `__init__`."
    parts = module.split('.')[1:]
    if not parts or parts[-1] in ('__init__', '__main__', '_modidx', '_moved') or (len(parts) == 1 and parts[0] in LAYERS): return None
    if parts[0] in LAYERS: return LAYERS[parts[0]]
    assert parts[0] in GROUND, f"{module} is in no layer: put it in a subpackage or add it to the ground modules"
    return LAYERS['ground']

def absolute(node: ast.ImportFrom, module: str) -> str:
    "The dotted name `from ... import` reads from, with relative imports (nbdev writes `from ..x import`) resolved."
    if not node.level: return node.module or ''
    package = module.split('.')[:-node.level] if not module.endswith('__init__') else module.split('.')[:-node.level - 1]
    return '.'.join(package + ([node.module] if node.module else []))

def imports(path: pathlib.Path) -> set[str]:
    "lmtune modules imported anywhere in `path`, function-local and relative imports included."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (src := absolute(node, module_name(path))).startswith('lmtune'):
            for a in node.names:   # `from lmtune.train import stages` names a module
                out.add(f'{src}.{a.name}' if (LIB.joinpath(*src.split('.')[1:]) / f'{a.name}.py').exists() else src)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith('lmtune')}
    return out

def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in LIB.rglob('*.py') if layer(module_name(p)) is not None}

def test_every_module_has_a_layer():
    assert len(graph()) > 20

def test_no_upward_import():
    up = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})" for m, ts in graph().items() for t in ts
          if layer(t) is not None and layer(t) > layer(m)]
    assert not up, "imports pointing up the layers:\n" + '\n'.join(sorted(up))

def test_no_circle():
    g, done = graph(), set()
    def visit(m, path):   # depth first; `path` is the chain of imports being followed
        if m in path: return path[path.index(m):] + [m]
        if m in done: return None
        for t in sorted(g.get(m, ())):
            if (c := visit(t, path + [m])): return c
        done.add(m)
    for m in sorted(g):
        assert not (c := visit(m, [])), "import circle: " + ' -> '.join(c)

def test_the_checks_catch_what_they_should():
    "The walker sees function-local imports, and `layer` places modules where the docstring says."
    p = LIB / 'estimate' / '_layers_probe.py'
    try:
        p.write_text("from ..train import stages\nfrom .run import resolve_run\ndef f():\n    from lmtune.ui.widgets import app\n")
        assert imports(p) == {'lmtune.ui.widgets', 'lmtune.train.stages', 'lmtune.estimate.run'}
    finally: p.unlink()
    assert layer('lmtune.catalog') < layer('lmtune.estimate.memory') < layer('lmtune.plan.fit') < layer('lmtune.train.stages') < layer('lmtune.ui.cli')
    assert layer('lmtune') is None and layer('lmtune.train') is None

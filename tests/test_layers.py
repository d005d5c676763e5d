"""The layers import only downwards (docs/architecture.md): core/ -> datasets/ -> modeling/. Every module's
imports are read with ``ast`` (at the top and inside functions alike), and the files stay small."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "datasets", "modeling")
# what a layer may not import; only the engine's assembly of a run reaches up from core
FORBIDDEN = {"core": ("datasets", "modeling"), "datasets": ("modeling",), "modeling": ()}
ASSEMBLES_A_RUN = {"core/engine/run.py", "core/engine/trained_run.py"}
MAX_LINES = 400


def python_files(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def imported_modules(path: Path, root: Path = ROOT):
    """(line, absolute module name) of every import in the file, relative ones resolved against its package
    (``path`` lies under ``root``, the repository)."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module:
                yield node.lineno, module
            else:  # from . import a, b: each name may be a module
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"


def upward_imports():
    found = []
    for path in python_files(*LAYERS):
        name = path.relative_to(ROOT).as_posix()
        layer = name.split("/")[0]
        if name in ASSEMBLES_A_RUN:
            continue
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[layer]:
                found.append(f"{name}:{line} imports {module}")
    return found


def test_the_layers_import_only_downwards():
    found = upward_imports()
    assert not found, "imports from a layer above (core -> datasets -> modeling):\n" + "\n".join(found)


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    module = tmp_path / "core" / "engine" / "sample.py"
    module.parent.mkdir(parents=True)
    module.write_text("import os\n\ndef f():\n    from modeling.pipeline import build_pipeline\n"
                      "    from .. import video\n    from ..io import atomic_write\n")
    assert list(imported_modules(module, tmp_path)) == [(1, "os"), (4, "modeling.pipeline"), (5, "core.video"),
                                                        (6, "core.io")]


def test_no_file_is_too_long():
    paths = [*python_files("core", "datasets", "modeling", "scripts"), ROOT / "main.py"]
    long = [f"{p.relative_to(ROOT).as_posix()}: {n} lines" for p in paths
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"files over {MAX_LINES} lines:\n" + "\n".join(long)

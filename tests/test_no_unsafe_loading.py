"""No code runs from user-supplied files: the project's sources never call eval / exec, never unpickle except
through the data-only unpickler (datasets/formats/safe_pickle.py), load checkpoints with weights_only=True,
numpy files with allow_pickle=False and YAML safely."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("core", "modeling", "datasets", "scripts") for p in (ROOT / folder).rglob("*.py")) \
    + [ROOT / "main.py"]
SAFE_UNPICKLER = ROOT / "datasets" / "formats" / "safe_pickle.py"


def calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            yield node, owner, name, keywords


def is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def problems(path: Path) -> list:
    found = []
    for node, owner, name, keywords in calls(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if isinstance(node.func, ast.Name) and name in ("eval", "exec", "compile", "__import__"):
            found.append(f"{where}: {name}()")
        if owner == "pickle" and path != SAFE_UNPICKLER:
            found.append(f"{where}: pickle.{name}() outside the data-only unpickler")
        if owner == "torch" and name == "load" and not is_true(keywords.get("weights_only")):
            found.append(f"{where}: torch.load without weights_only=True")
        if owner == "np" and name == "load" and "allow_pickle" in keywords and \
                not (isinstance(keywords["allow_pickle"], ast.Constant) and keywords["allow_pickle"].value is False):
            found.append(f"{where}: np.load with allow_pickle")
        if owner == "yaml" and name in ("load", "unsafe_load", "full_load", "load_all"):
            found.append(f"{where}: yaml.{name} (use yaml.safe_load)")
    return found


def test_sources_were_found():
    assert len(SOURCES) > 50 and SAFE_UNPICKLER in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_is_run_from_files(path):
    assert problems(path) == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle, torch, yaml, numpy as np\n"
                   "eval('1')\npickle.loads(b'')\ntorch.load('x')\nyaml.load('a')\nnp.load('x', allow_pickle=True)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(problems(bad)) == 5
    finally:
        ROOT = saved
